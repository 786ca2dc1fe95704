// The pipeline editor (templates/web/editor.html). One document, two views:
// `text` is the file; the visual view is rendered from it on the server. A visual
// edit posts {text, op} to edit/op and gets back the new text, the re-rendered view
// and lint's problems; a YAML edit posts {text} to edit/lint (debounced). Each
// control carries its op as JSON (devops/web/editor_form.py): this file only fills
// in what the user typed, sends it, and swaps in what comes back.
(function () {
  "use strict";
  const root = document.getElementById("editor");
  if (!root) return;
  const CM = window.SlipwayCM;
  const canWrite = root.dataset.canWrite === "1";
  const eol = root.dataset.eol;
  const visual = document.getElementById("visual");
  const problemsBox = document.getElementById("problems");
  const status = document.getElementById("ed-status");
  const saveForm = document.getElementById("save-form");
  const newStep = JSON.parse(document.getElementById("ed-new-step").textContent);
  const csrf = (JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"]) || "";
  let text = document.getElementById("editor-text").value;
  let selected = root.dataset.selected || "pipeline";
  let problems = [];
  let chain = Promise.resolve(); // requests run one after another, in the order of the gestures
  let lintTimer = null;
  let lintSeq = 0;
  let remote = false; // the YAML view is being updated from a server answer, not typed into

  // -- the YAML view: CodeMirror 6 (static/vendor/codemirror) -------------------------------
  const view = new CM.EditorView({
    parent: document.getElementById("cm"),
    state: CM.EditorState.create({
      doc: text,
      extensions: [
        CM.lineNumbers(), CM.highlightActiveLineGutter(), CM.history(), CM.drawSelection(),
        CM.indentOnInput(), CM.syntaxHighlighting(CM.defaultHighlightStyle, {fallback: true}),
        CM.bracketMatching(), CM.highlightActiveLine(), CM.highlightSelectionMatches(),
        CM.keymap.of([...CM.defaultKeymap, ...CM.historyKeymap, ...CM.searchKeymap]),
        CM.yaml(), CM.lintGutter(),
        CM.EditorState.readOnly.of(!canWrite),
        CM.EditorView.contentAttributes.of({"aria-label": "Pipeline YAML"}),
        CM.EditorView.updateListener.of((u) => { if (u.docChanged && !remote) yamlEdited(); }),
      ],
    }),
  });

  function setYaml(newText) {
    // Replace only the changed middle, so the cursor and undo history around it survive.
    const old = view.state.doc.toString();
    const t = newText.replace(/\r\n/g, "\n");
    if (old === t) return;
    let a = 0;
    while (a < old.length && a < t.length && old[a] === t[a]) a++;
    let b = 0;
    while (b < old.length - a && b < t.length - a && old[old.length - 1 - b] === t[t.length - 1 - b]) b++;
    remote = true;
    view.dispatch({changes: {from: a, to: old.length - b, insert: t.slice(a, t.length - b)}});
    remote = false;
  }

  function diagnostics() {
    const doc = view.state.doc;
    const out = problems.map((p) => {
      const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
      const from = line.from + Math.min(Math.max(p.column - 1, 0), line.length);
      return {from, to: Math.max(from, line.to), severity: p.severity === "error" ? "error" : "warning",
              message: (p.path ? p.path + ": " : "") + p.message};
    });
    view.dispatch(CM.setDiagnostics(view.state, out));
  }

  function currentText() {
    const t = view.state.doc.toString();
    return eol === "crlf" ? t.replace(/\n/g, "\r\n") : t;
  }

  function yamlEdited() {
    text = currentText();
    say("Checking…");
    clearTimeout(lintTimer);
    lintTimer = setTimeout(lintNow, 400);
  }

  function lintNow() {
    clearTimeout(lintTimer);
    lintTimer = null;
    const seq = ++lintSeq;
    const sent = text;
    return queue(() => post(root.dataset.lintUrl, {text: sent}).then((data) => {
      if (data && seq === lintSeq) render(data, {keepYaml: true});
    }));
  }

  // -- requests --------------------------------------------------------------------------
  function queue(fn) {
    chain = chain.then(fn, fn);
    return chain;
  }

  async function post(url, fields) {
    const body = new URLSearchParams({selected, eol: eol || "lf", ...fields});
    let r;
    try {
      r = await fetch(url, {method: "POST", body, headers: {"X-CSRFToken": csrf}, credentials: "same-origin"});
    } catch (e) {
      say("Not sent: " + e.message, true);
      return null;
    }
    let data = null;
    try { data = await r.json(); } catch (e) { /* an HTML error page */ }
    if (!r.ok) {
      say((data && data.error) || ("The server answered " + r.status), true);
      return null;
    }
    return data;
  }

  function sendOp(op, focusKey) {
    if (!canWrite) return Promise.resolve();
    say("Saving the change…");
    return queue(() => post(root.dataset.opUrl, {text, op: JSON.stringify(op)}).then((data) => {
      if (!data) return;
      let key = focusKey;
      if (key && op.op === "move" && key.startsWith(op.from)) key = op.to + key.slice(op.from.length);
      const newStep = op.op === "insert" && /\.steps\[\d+\]$/.test(op.path);
      render(data, {focusKey: key, movedTo: op.op === "move" ? op.to : null, focusPanel: newStep});
    }));
  }

  function say(message, bad) {
    status.textContent = message;
    status.classList.toggle("bad", !!bad);
  }

  // -- swapping in the server's answer -------------------------------------------------------
  function render(data, opts) {
    opts = opts || {};
    const active = document.activeElement;
    const activeId = active && visual.contains(active) ? active.id : "";
    // What the user typed into the next field while this answer was on its way is not thrown away.
    const typing = activeId && (active.tagName === "TEXTAREA" || active.type === "text" || active.type === "number")
      && active.value !== active.defaultValue ? {value: active.value, start: active.selectionStart} : null;
    text = data.text;
    selected = data.selected;
    if (!opts.keepYaml) setYaml(text);
    problems = data.problems;
    visual.innerHTML = data.visual;
    problemsBox.innerHTML = data.problems_html;
    diagnostics();
    if (saveForm) {
      saveForm.elements.text.value = text;
      saveForm.querySelector("#save-button").disabled = data.errors > 0;
      saveForm.querySelector("#save-note").textContent = data.errors > 0 ? "Fix the errors to save." : "";
    }
    say(data.errors ? `${data.errors} error${data.errors > 1 ? "s" : ""}` : "No errors", data.errors > 0);
    wireSortable();
    let target = null;
    if (opts.focusPanel) {  // a new step: its first field lint wants filled, else its first text field
      target = visual.querySelector(".ed-panel [aria-invalid='true']")
        || visual.querySelector(".ed-panel input[type='text'], .ed-panel textarea");
    }
    if (!target && opts.focusKey) target = visual.querySelector(`[data-focus="${CSS.escape(opts.focusKey)}"]`);
    if (!target && opts.movedTo) target = visual.querySelector(`[data-select="${CSS.escape(opts.movedTo)}"]`);
    if (!target && opts.focusName) target = visual.querySelector(`[name="${CSS.escape(opts.focusName)}"]`);
    if (!target && activeId) target = document.getElementById(activeId);
    if (!target && activeId) target = visual.querySelector('[data-select="pipeline"]'); // its item was deleted
    if (target) target.focus();
    if (typing && target && target.id === activeId) {
      target.value = typing.value;
      try { target.setSelectionRange(typing.start, typing.start); } catch (e) { /* number inputs */ }
    }
  }

  // -- visual controls -------------------------------------------------------------------------
  function opForField(el) {
    const kind = el.dataset.field;
    const path = el.name;
    if (kind === "bool") return JSON.parse(el.checked ? el.dataset.on : el.dataset.off);
    if (kind === "choice") {
      const o = el.selectedOptions[0];
      return o && o.dataset.op ? JSON.parse(o.dataset.op) : null;
    }
    const v = el.value;
    if (v === "" && !el.dataset.required) return {op: "delete", path};
    if (kind === "int") {
      const n = Number(v);
      return {op: "set", path, value: Number.isInteger(n) && v.trim() !== "" ? n : v};
    }
    return {op: "set", path, value: v};
  }

  function fill(template, adder) {
    // Replace @PLACEHOLDERS@ with what the user typed in the adder's inputs; null when one is missing.
    const values = {};
    const optional = new Set();
    let missing = null;
    if (adder) {
      for (const input of adder.querySelectorAll("[data-ph]")) {
        values[input.dataset.ph] = input.value.trim();
        if (input.dataset.optional) optional.add(input.dataset.ph);
        else if (!values[input.dataset.ph] && !missing) missing = input;
      }
    }
    if (missing) {
      say(`${missing.dataset.label || "A value"} is needed first.`, true);
      missing.focus();
      return null;
    }
    const walk = (x, isPath) => {
      if (typeof x === "string") {
        if (x === "@STEP@") return {[values["@STEP@"]]: newStep[values["@STEP@"]] || {}};
        let s = x;
        for (const [ph, v] of Object.entries(values)) {
          if (isPath && ph === "@KEY@" && !/^[A-Za-z0-9_-]+$/.test(v)) s = s.replace("." + ph, "[" + JSON.stringify(v) + "]");
          s = s.split(ph).join(v);
        }
        return s;
      }
      if (Array.isArray(x)) return x.map((y) => walk(y, false));
      if (x && typeof x === "object") {
        const out = {};
        for (const [k, v] of Object.entries(x)) {
          if (typeof v === "string" && optional.has(v) && !values[v]) continue; // an optional field left empty
          out[k] = walk(v, k === "path" || k === "from" || k === "to");
        }
        return out;
      }
      return x;
    };
    return walk(template, false);
  }

  visual.addEventListener("change", (e) => {
    const el = e.target;
    if (el.matches("select.ed-vars")) {
      insertVariable(el);
      return;
    }
    if (!el.dataset.field || !el.name) return;
    const op = opForField(el);
    if (op) sendOp(op);
  });

  visual.addEventListener("keydown", (e) => {
    // Enter in an adder's input adds, as its button would.
    if (e.key === "Enter" && e.target.matches("[data-adder] input")) {
      e.preventDefault();
      const button = e.target.closest("[data-adder]").querySelector("button[data-op]");
      if (button) button.click();
    }
  });

  visual.addEventListener("click", (e) => {
    const sel = e.target.closest("[data-select]");
    if (sel) {
      selectItem(sel.dataset.select);
      return;
    }
    const button = e.target.closest("button[data-op]");
    if (!button) return;
    const adder = button.closest("[data-adder]");
    const op = fill(JSON.parse(button.dataset.op), adder);
    if (op) sendOp(op, button.dataset.focus);
  });

  function selectItem(path, focusName) {
    selected = path;
    return queue(() => post(root.dataset.lintUrl, {text}).then((data) => {
      if (!data) return;
      render(data, {keepYaml: true, focusName: focusName || null});
      if (!focusName) {
        const title = document.getElementById("ed-panel-title");
        const first = visual.querySelector(".ed-panel input, .ed-panel textarea, .ed-panel select");
        (first || title || document.body).focus();
      }
    }));
  }

  function insertVariable(select) {
    const input = document.getElementById(select.dataset.insertInto);
    const name = select.value;
    select.value = "";
    if (!input || !name) return;
    const at = input.selectionStart == null ? input.value.length : input.selectionStart;
    input.value = input.value.slice(0, at) + "${" + name + "}" + input.value.slice(input.selectionEnd ?? at);
    input.dispatchEvent(new Event("change", {bubbles: true}));
  }

  // -- drag and drop: SortableJS; the keyboard has the move buttons --------------------------
  let sortables = [];
  function wireSortable() {
    sortables.forEach((s) => s.destroy());
    sortables = [];
    if (!canWrite || !window.Sortable) return;
    const stages = document.getElementById("ed-stages");
    if (!stages) return;
    const common = {animation: 120, forceFallback: true, fallbackOnBody: true, ghostClass: "ed-ghost"};
    sortables.push(window.Sortable.create(stages, {...common, handle: ".ed-stage-handle", draggable: ".ed-stage",
      onEnd: (e) => {
        if (e.oldIndex === e.newIndex) return;
        sendOp({op: "move", from: `stages[${e.oldIndex}]`, to: `stages[${e.newIndex}]`});
      }}));
    for (const list of stages.querySelectorAll(".ed-steps")) {
      sortables.push(window.Sortable.create(list, {...common, group: "steps", handle: ".ed-handle", draggable: ".ed-card",
        onEnd: (e) => {
          const a = e.from.dataset.stage, b = e.to.dataset.stage;
          if (a === b && e.oldIndex === e.newIndex) return;
          sendOp({op: "move", from: `stages[${a}].steps[${e.oldIndex}]`, to: `stages[${b}].steps[${e.newIndex}]`});
        }}));
    }
  }

  // -- tabs: Visual | YAML ----------------------------------------------------------------------
  const tabs = [document.getElementById("tab-visual"), document.getElementById("tab-yaml")];
  function showTab(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (tab.id === "tab-yaml") view.requestMeasure();
    else if (lintTimer) lintNow(); // typed YAML reaches the visual view before it is shown
  }
  for (const t of tabs) {
    t.addEventListener("click", () => showTab(t));
    t.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
      const other = tabs[(tabs.indexOf(t) + 1) % 2];
      showTab(other);
      other.focus();
    });
  }

  // -- the problem list: a click goes to the field (visual) or the line (YAML) -------------------
  problemsBox.addEventListener("click", (e) => {
    const b = e.target.closest("[data-goto]");
    if (!b) return;
    const path = b.dataset.goto;
    if (tabs[1].getAttribute("aria-selected") === "true" || !path) {
      showTab(tabs[1]);
      const line = view.state.doc.line(Math.min(Math.max(Number(b.dataset.line) || 1, 1), view.state.doc.lines));
      view.dispatch({selection: {anchor: line.from}, scrollIntoView: true});
      view.focus();
      return;
    }
    const m = /^stages\[\d+\](\.steps\[\d+\])?/.exec(path);
    selectItem(m ? m[0] : "pipeline", path);
  });

  // -- Save: the diff first, in a dialog; its buttons post the form (commit, branch, download, run) --
  const dialog = document.getElementById("save-dialog");
  if (saveForm) {
    saveForm.addEventListener("submit", (e) => {
      e.preventDefault();
      if (lintTimer) lintNow();
      queue(async () => {
        saveForm.elements.text.value = text;
        const body = new URLSearchParams(new FormData(saveForm));
        body.set("text", text);
        body.set("fragment", "1");
        const r = await fetch(root.dataset.saveUrl, {method: "POST", body, headers: {"X-CSRFToken": csrf}});
        document.getElementById("save-box").innerHTML = await r.text();
        dialog.showModal();
        const first = dialog.querySelector("#save-message") || dialog.querySelector("button");
        if (first) first.focus();
      });
    });
    dialog.addEventListener("click", (e) => {
      if (e.target.closest("[data-close]")) { e.preventDefault(); dialog.close(); }
    });
  }

  problems = JSON.parse(document.getElementById("ed-problems-json").textContent);
  diagnostics();
  wireSortable();
})();
