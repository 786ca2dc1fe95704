// The run page's few lines of script. The server renders and pushes the
// state (htmx ws extension, devops/web/consumers.py); this keeps running
// durations ticking between pushes, keeps the selected step marked across
// pushed redraws, follows the run's running step until the user picks one,
// and reconnects quickly after a network drop (the server sends the whole
// current state on every connect, so nothing is missed).
(function () {
  "use strict";
  // Capped exponential backoff with jitter: 0.25 s, 0.5 s, ... at most 5 s.
  htmx.config.wsReconnectDelay = function (retries) {
    return Math.min(250 * Math.pow(2, retries), 5000) * (0.5 + Math.random() / 2);
  };

  function fmt(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return h + "h " + m + "m";
    return m ? m + "m " + s + "s" : s + "s";
  }
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("time.ticking[data-since]").forEach(function (t) {
      var since = parseInt(t.dataset.since, 10);
      if (!isNaN(since)) t.textContent = fmt(Math.max(0, Math.floor(now - since)));
    });
  }
  setInterval(tick, 1000);

  function markSelected() {
    var pane = document.getElementById("log-pane");
    if (!pane) return;
    document.querySelectorAll("a.step").forEach(function (a) {
      var on = a.dataset.stage === pane.dataset.stage && a.dataset.step === pane.dataset.step;
      if (on) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    });
  }
  // A click on a step is the user's choice: the pane stops following the run's default.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var a = e.detail.elt;
    if (a && a.classList && a.classList.contains("step")) {
      var pane = document.getElementById("log-pane");
      pane.dataset.stage = a.dataset.stage;
      pane.dataset.step = a.dataset.step;
      pane.dataset.auto = "false";
      markSelected();
    }
  });
  // Until then the pane follows the run's default step (the server's choice,
  // pushed in the header's data-default: the running step, else the failed
  // one): a rerun's page, opened before any step ran, shows each step's log
  // as it starts, without a click.
  function follow() {
    var pane = document.getElementById("log-pane"), header = document.getElementById("run-header");
    if (!pane || !header || pane.dataset.auto !== "true" || !header.dataset.default) return;
    var want = header.dataset.default.split(".");
    if (want[0] === pane.dataset.stage && want[1] === pane.dataset.step) return;
    var a = document.getElementById("step-" + want[0] + "-" + want[1]);
    if (!a) return;
    pane.dataset.stage = want[0];
    pane.dataset.step = want[1];
    if (a.hasAttribute("hx-get")) {  // the viewer, without a history entry (the user chose nothing)
      htmx.ajax("GET", a.dataset.logUrl, { target: "#log-pane", swap: "innerHTML" });
      return;
    }
    var p = document.createElement("p"), link = document.createElement("a");
    link.href = a.dataset.logUrl;
    link.textContent = "raw log";
    p.append("Log of ", a.querySelector(".step-name").textContent, ": ", link, ".");
    pane.replaceChildren(p);
  }
  document.addEventListener("htmx:wsAfterMessage", function () { follow(); markSelected(); });
  document.addEventListener("htmx:wsOpen", function () { document.body.dataset.live = "open"; });
  document.addEventListener("htmx:wsClose", function () { document.body.dataset.live = "closed"; });
})();
