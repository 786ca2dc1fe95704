// Dialogs without inline scripts: <button command="show-modal" commandfor="ID"> is native in
// recent browsers (invoker commands); this file does the same where it is not.
(function () {
  "use strict";
  if ("command" in HTMLButtonElement.prototype) return;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[commandfor]");
    if (!button) return;
    var dialog = document.getElementById(button.getAttribute("commandfor"));
    if (!dialog) return;
    var command = button.getAttribute("command");
    if (command === "show-modal") dialog.showModal();
    else if (command === "close") dialog.close();
  });
})();
