/* Slipway's log viewer (templates/web/log.html#viewer). Plain script, no build step.
 *
 * The server renders every line (ANSI colours to escaped HTML spans); this
 * script only moves a bounded window of those rows (at most MAX_ROWS in the
 * DOM, whatever the log's size), follows live bytes from the log WebSocket
 * (a doorbell: new bytes -> fetch the rendered rows after the last one; the
 * byte offset resumes the socket after a reconnect), searches on the server,
 * folds sections, and shows timestamps.
 *
 * Hook: SlipwayLog.init(element) on a `[data-log-viewer]` element (done
 * automatically on page load and on every `htmx:load`); SlipwayLog.destroy(element)
 * closes its socket (done automatically when htmx removes it).
 */
(function () {
  "use strict";
  if (window.SlipwayLog) return;
  var MAX_ROWS = 3000, PAGE = 500, EDGE = 400;

  function init(root) {
    if (root._lv) return root._lv;
    var d = root.dataset;
    var st = root._lv = {
      root: root, pane: root.querySelector(".lv-pane"), box: root.querySelector(".lv-lines"),
      anchor: d.anchor, first: +d.first, next: +d.next, more: d.more === "true",
      complete: d.complete === "true", sgr: d.sgr || "", offset: +d.size, started: d.started ? +d.started : null,
      busy: false, again: false, ws: null, retry: 250, closed: false, searchAt: 0, mark: null,
      follow: root.querySelector("input[name=follow]"), ts: root.querySelector("select[name=timestamps]"),
      found: root.querySelector(".lv-found"), state: root.querySelector(".lv-state")
    };
    var btn = function (act) { return root.querySelector("[data-act=" + act + "]"); };
    st.earlier = btn("earlier"); st.later = btn("later");

    root.addEventListener("click", function (e) {
      var t = e.target.closest("button, a.ln");
      if (!t || !root.contains(t)) return;
      if (t.classList.contains("lf")) return fold(st, t);
      var act = t.dataset.act;
      if (act === "earlier") loadEarlier(st);
      else if (act === "later") loadLater(st);
      else if (act === "top") { setFollow(st, false); load(st, { from: 1 }).then(function () { st.pane.scrollTop = 0; }); }
      else if (act === "bottom") toBottom(st, !st.complete);
      else if (act === "prev") search(st, "prev");
    });
    root.querySelector("form[data-act=search]").addEventListener("submit", function (e) {
      e.preventDefault(); search(st, "next");
    });
    st.ts.addEventListener("change", function () { stamp(st, st.box); });
    st.follow.addEventListener("change", function () { if (st.follow.checked) toBottom(st, true); });
    // Scrolling up is the user's intent to stop following; reaching the bottom resumes it.
    st.pane.addEventListener("wheel", function (e) { if (e.deltaY < 0) setFollow(st, false); }, { passive: true });
    st.pane.addEventListener("keydown", function (e) {
      if (["ArrowUp", "PageUp", "Home"].indexOf(e.key) >= 0) setFollow(st, false);
    });
    st.pane.addEventListener("scroll", function () { onScroll(st); }, { passive: true });
    st.onHash = function () { fromHash(st); };
    window.addEventListener("hashchange", st.onHash);

    stamp(st, st.box);
    if (!fromHash(st) && st.follow.checked) scrollBottom(st);
    if (!st.complete) connect(st);
    return st;
  }

  function destroy(root) {
    var st = root._lv;
    if (!st) return;
    st.closed = true;
    if (st.ws) st.ws.close();
    window.removeEventListener("hashchange", st.onHash);
    delete root._lv;
  }

  // --- fetching rendered rows ------------------------------------------------
  function fetchRows(st, params) {
    var url = st.root.dataset.linesUrl + "?" + new URLSearchParams(params).toString();
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
      if (!r.ok) throw new Error("lines: HTTP " + r.status);
      return r.text().then(function (html) {
        var h = function (n) { return r.headers.get("X-Log-" + n); };
        return { html: html, first: +h("First"), next: +h("Next"), more: h("More") === "true",
                 complete: h("Complete") === "true", sgr: h("Sgr") || "" };
      });
    });
  }

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;  // rows the server rendered and escaped
    return t.content;
  }

  function edges(st) {
    st.earlier.hidden = st.first <= 1;
    st.later.hidden = !st.more;
  }

  function rows(st) { return st.box.children.length; }

  // Replace the window (top, bottom, a search hit or an anchor far away).
  function load(st, params) {
    params.limit = PAGE;
    return fetchRows(st, params).then(function (p) {
      st.box.replaceChildren(fragment(p.html));
      st.first = p.first; st.next = p.next; st.more = p.more; st.sgr = p.sgr;
      stamp(st, st.box); edges(st); setComplete(st, p.complete);
    });
  }

  function loadLater(st) {
    if (st.busy) { st.again = true; return Promise.resolve(); }
    st.busy = true;
    return fetchRows(st, { from: st.next, sgr: st.sgr, limit: PAGE }).then(function (p) {
      var frag = fragment(p.html), added = frag.children.length;
      stamp(st, frag);
      st.box.append(frag);
      st.next = p.next; st.more = p.more; st.sgr = p.sgr; setComplete(st, p.complete);
      // Keep the DOM bounded: drop rows from the top, holding the view still.
      var drop = rows(st) - MAX_ROWS;
      if (drop > 0) {
        var before = st.pane.scrollHeight;
        for (var i = 0; i < drop; i++) st.box.firstElementChild.remove();
        st.pane.scrollTop -= before - st.pane.scrollHeight;
        st.first = +st.box.firstElementChild.dataset.n;
      }
      edges(st);
      if (st.follow.checked) scrollBottom(st);
      st.busy = false;
      if (st.again || (st.follow.checked && st.more)) { st.again = false; loadLater(st); }
      return added;
    }, function (err) { st.busy = false; st.again = false; throw err; });
  }

  function loadEarlier(st) {
    if (st.busy || st.first <= 1) return Promise.resolve();
    st.busy = true;
    var from = Math.max(1, st.first - PAGE);
    return fetchRows(st, { from: from, limit: st.first - from }).then(function (p) {
      var frag = fragment(p.html);
      stamp(st, frag);
      var before = st.pane.scrollHeight;
      st.box.prepend(frag);
      st.pane.scrollTop += st.pane.scrollHeight - before;
      st.first = from;
      var drop = rows(st) - MAX_ROWS;
      if (drop > 0) {
        for (var i = 0; i < drop; i++) st.box.lastElementChild.remove();
        st.next = +st.box.lastElementChild.dataset.n + 1;
        st.more = true; st.sgr = "";  // colours restart after a dropped tail
      }
      edges(st);
    }).finally(function () { st.busy = false; });
  }

  // --- scrolling and following ------------------------------------------------
  function atBottom(st) { return st.pane.scrollHeight - st.pane.scrollTop - st.pane.clientHeight < 4; }
  function scrollBottom(st) { st.pane.scrollTop = st.pane.scrollHeight; }
  function setFollow(st, on) { st.follow.checked = on; }

  function toBottom(st, follow) {
    setFollow(st, follow);
    return load(st, { end: 1 }).then(function () { scrollBottom(st); });
  }

  function onScroll(st) {
    if (st.pane.scrollTop < EDGE && st.first > 1) loadEarlier(st);
    var nearEnd = st.pane.scrollHeight - st.pane.scrollTop - st.pane.clientHeight < EDGE;
    if (nearEnd && st.more && !st.follow.checked) loadLater(st);
    if (atBottom(st) && !st.more && !st.complete && !st.follow.checked) setFollow(st, true);
  }

  // --- live bytes: the log WebSocket as a doorbell, resumed by byte offset ----------
  function connect(st) {
    if (st.closed || st.complete) return;
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = st.ws = new WebSocket(proto + "//" + location.host + st.root.dataset.wsUrl + "&offset=" + st.offset);
    var done = false;
    ws.onopen = function () { st.retry = 250; };
    ws.onmessage = function (e) {
      var f = JSON.parse(e.data);
      if (f.type === "log") {
        st.offset = f.offset + atob(f.data).length;
        ring(st);
      } else if (f.type === "end" || f.type === "done") {
        done = true;
        ring(st);
      }
    };
    ws.onclose = function () {
      st.ws = null;
      if (done || st.closed) return;
      setTimeout(function () { connect(st); }, st.retry);  // a dropped network: resume at st.offset
      st.retry = Math.min(st.retry * 2, 5000);
    };
  }

  function ring(st) {
    if (st.follow.checked || (!st.more && atBottom(st))) loadLater(st);
    else { st.more = true; edges(st); }
  }

  function setComplete(st, complete) {
    if (complete && !st.complete) {
      st.complete = true;
      st.state.textContent = "Complete";
      setFollow(st, false);
    }
  }

  // --- going to a line: anchors and search hits ---------------------------------
  function goto(st, n, cls) {
    var find = function () { return document.getElementById(st.anchor + n); };
    var show = function () {
      var row = find();
      if (!row) return false;
      if (st.mark) st.mark.classList.remove("hit", "target");
      row.classList.add(cls);
      st.mark = row;
      row.scrollIntoView({ block: "center" });
      return true;
    };
    setFollow(st, false);
    if (find()) return Promise.resolve(show());
    return load(st, { around: n }).then(show);
  }

  function fromHash(st) {
    var m = /^#s(\d+)\.(\d+)-L(\d+)$/.exec(location.hash);
    if (!m || m[1] !== st.root.dataset.stage || m[2] !== st.root.dataset.step) return false;
    goto(st, +m[3], "target");
    return true;
  }

  function search(st, direction) {
    var q = st.root.querySelector("input[name=q]").value;
    if (!q) return;
    var url = st.root.dataset.searchUrl + "?" + new URLSearchParams({ q: q, from: st.searchAt, direction: direction });
    st.found.textContent = "Searching…";
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (res) {
        if (!res.count) { st.found.textContent = "No match"; return; }
        st.searchAt = res.line;
        st.found.textContent = res.ordinal + " of " + res.count + " (line " + res.line + ")";
        return goto(st, res.line, "hit");
      });
  }

  // --- timestamps and folds ---------------------------------------------------
  function pad(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }

  function stamp(st, where) {
    var mode = st.ts.value;
    st.root.classList.toggle("ts-on", mode !== "off");
    if (mode === "off") return;
    var base = st.started;
    if (base === null) { var r0 = st.box.querySelector("[data-t]"); base = r0 ? +r0.dataset.t : 0; }
    where.querySelectorAll(".ll[data-t]").forEach(function (row) {
      var t = +row.dataset.t, el = row.querySelector(".lt");
      if (mode === "absolute") { el.textContent = new Date(t).toISOString().slice(11, 23); return; }
      var ms = Math.max(0, t - base), s = Math.floor(ms / 1000);
      el.textContent = "+" + pad(Math.floor(s / 60), 2) + ":" + pad(s % 60, 2) + "." + Math.floor((ms % 1000) / 100);
    });
  }

  // A fold: a section start to its end (nested ones counted), or a command to the next command.
  function fold(st, button) {
    var head = button.closest(".ll"), open = button.getAttribute("aria-expanded") === "true";
    var section = head.dataset.fold === "start", depth = 0;
    for (var row = head.nextElementSibling; row; row = row.nextElementSibling) {
      var k = row.dataset.fold, end = row.classList.contains("k-end");
      if (section) {
        if (k === "start") depth++;
        if (end && depth-- === 0) { row.hidden = open; break; }
      } else if (k || end) break;
      row.hidden = open;
      var inner = row.querySelector(".lf");
      if (inner && !open) inner.setAttribute("aria-expanded", "true");
    }
    button.setAttribute("aria-expanded", open ? "false" : "true");
    head.classList.toggle("folded", open);
  }

  window.SlipwayLog = { init: init, destroy: destroy };
  var all = function (el) {
    if (el.matches && el.matches("[data-log-viewer]")) init(el);
    if (el.querySelectorAll) el.querySelectorAll("[data-log-viewer]").forEach(init);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { all(document); });
  else all(document);
  document.addEventListener("htmx:load", function (e) { all(e.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (e) {
    if (e.target._lv) destroy(e.target);
  });
})();
