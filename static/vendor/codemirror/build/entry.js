// The one entry point of the vendored CodeMirror bundle: exactly what
// static/web/editor.js uses, exposed as the global `SlipwayCM`.
export {EditorState, StateEffect, StateField} from "@codemirror/state";
export {EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection} from "@codemirror/view";
export {defaultKeymap, history, historyKeymap, indentWithTab} from "@codemirror/commands";
export {syntaxHighlighting, defaultHighlightStyle, indentOnInput, bracketMatching, foldGutter} from "@codemirror/language";
export {yaml} from "@codemirror/lang-yaml";
export {linter, lintGutter, setDiagnostics, forceLinting} from "@codemirror/lint";
export {searchKeymap, highlightSelectionMatches} from "@codemirror/search";
