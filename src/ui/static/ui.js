// soute web UI: copy buttons, select-all for tag lists, confirmations. No inline script:
// the Content-Security-Policy allows only this file.
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) return;
  var text = b.getAttribute("data-copy");
  var done = function () {
    b.textContent = "Copied";
    setTimeout(function () { b.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () {});
  } else {
    var t = document.createElement("textarea");
    t.value = text;
    t.setAttribute("readonly", "");
    t.className = "offscreen";
    document.body.appendChild(t);
    t.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
    document.body.removeChild(t);
  }
});
function countSelected() {
  var boxes = document.querySelectorAll("input[name=tag]");
  var n = Array.prototype.filter.call(boxes, function (c) { return c.checked; }).length;
  var button = document.getElementById("delete-selected");
  if (button) {
    button.disabled = n === 0;
    button.textContent = n ? "Delete " + n + " selected…" : "Delete selected…";
  }
}
document.addEventListener("change", function (ev) {
  var all = ev.target.closest("input[data-select-all]");
  if (all) {
    document.querySelectorAll("input[name=tag]").forEach(function (c) { c.checked = all.checked; });
  }
  countSelected();
});
// Destructive one-click actions ask first: a form with data-confirm="question".
document.addEventListener("submit", function (ev) {
  var b = ev.submitter;
  var q = (b && b.getAttribute("data-confirm")) || ev.target.getAttribute("data-confirm");
  if (q && !window.confirm(q)) ev.preventDefault();
});
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", countSelected);
} else {
  countSelected();
}
