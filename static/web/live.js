// The run page's few lines of script. The server renders and pushes the
// state (htmx ws extension, devops/web/consumers.py); this keeps running
// durations ticking between pushes, keeps the selected step marked across
// pushed redraws, and reconnects quickly after a network drop (the server
// sends the whole current state on every connect, so nothing is missed).
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
  document.addEventListener("htmx:beforeRequest", function (e) {
    var a = e.detail.elt;
    if (a && a.classList && a.classList.contains("step")) {
      var pane = document.getElementById("log-pane");
      pane.dataset.stage = a.dataset.stage;
      pane.dataset.step = a.dataset.step;
      markSelected();
    }
  });
  // Nothing selected yet (the page loaded before any step ran): follow the
  // run to its running step, or the failed one, as the server would on load.
  function autoSelect() {
    var pane = document.getElementById("log-pane");
    if (!pane || pane.dataset.stage) return;
    var a = document.querySelector("a.step.state-building") || document.querySelector("a.step.state-failed");
    if (!a) return;
    if (a.hasAttribute("hx-get")) { htmx.trigger(a, "click"); return; }
    pane.dataset.stage = a.dataset.stage;
    pane.dataset.step = a.dataset.step;
    var p = document.createElement("p"), link = document.createElement("a");
    link.href = a.dataset.logUrl;
    link.textContent = "raw log";
    p.append("Log of ", a.querySelector(".step-name").textContent, ": ", link, ".");
    pane.replaceChildren(p);
  }
  document.addEventListener("htmx:wsAfterMessage", function () { autoSelect(); markSelected(); });
  document.addEventListener("htmx:wsOpen", function () { document.body.dataset.live = "open"; });
  document.addEventListener("htmx:wsClose", function () { document.body.dataset.live = "closed"; });
})();
