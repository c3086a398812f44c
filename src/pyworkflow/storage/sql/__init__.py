"""What SQL backends share: the schema, the migrations, the statements, rows and decoding."""
