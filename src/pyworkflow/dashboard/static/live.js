// Live counts on the runs page and the Workflows page (asked at once, then every 2 s), and a
// run page that follows its run until it ends.
// Short polling of the JSON API; only numbers and a status are read: nothing from the
// server is ever inserted as HTML.
(function () {
  "use strict";
  var PERIOD = 2000;

  function poll(url, apply, first) {
    function once() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && apply(data) !== false) { setTimeout(once, PERIOD); } })
        .catch(function () { setTimeout(once, PERIOD * 3); });
    }
    setTimeout(once, first === undefined ? PERIOD : first);
  }

  function liveCounts() {
    var box = document.getElementById("counts");
    if (!box) { return; }
    // The page names what it counts: every run, or every run of the workflow filtered on.
    poll(box.getAttribute("data-url") || "/api/runs/counts", function (data) {
      box.querySelectorAll("[data-count]").forEach(function (cell) {
        var key = cell.getAttribute("data-count");
        var n = key === "total" ? data.total : data.counts[key];
        if (typeof n === "number") { cell.textContent = String(n); }
      });
    }, 0);
  }

  // The Workflows page: each workflow's runs per status, now, from one API call every 2 s.
  function liveWorkflowCounts() {
    var table = document.getElementById("workflow-counts");
    if (!table) { return; }
    poll("/api/workflows/counts", function (data) {
      table.querySelectorAll("td[data-workflow]").forEach(function (cell) {
        var found = data.workflows[cell.getAttribute("data-workflow")];
        if (!found) { return; }
        cell.querySelector("[data-total]").textContent = String(found.total);
        var box = cell.querySelector("[data-statuses]");
        while (box.firstChild) { box.removeChild(box.firstChild); }
        Object.keys(found.counts).forEach(function (status) {
          var n = found.counts[status];
          if (typeof n !== "number" || n === 0 || !/^[a-z_]+$/.test(status)) { return; }
          var badge = document.createElement("span");
          badge.className = "status status-" + status;
          badge.setAttribute("data-count", status);
          badge.textContent = status + " " + n;
          box.appendChild(badge);
          box.appendChild(document.createTextNode(" "));
        });
      });
    }, 0);
  }

  function liveRun() {
    var badge = document.getElementById("run-status");
    if (!badge || badge.getAttribute("data-live") !== "yes") { return; }
    var runId = badge.getAttribute("data-run");
    var seen = badge.getAttribute("data-status");
    var url = "/api/runs?limit=1&run_id=" + encodeURIComponent(runId);
    poll(url, function (data) {
      var run = data.runs && data.runs[0];
      if (run && run.status !== seen) {
        // The page shows more than the status (events, buttons): load it again, without the
        // notice of the action that led here.
        window.location.replace(window.location.pathname);
        return false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveCounts();
    liveWorkflowCounts();
    liveRun();
  });
})();
