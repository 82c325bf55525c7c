// hotdesk portal: progressive enhancement only; every form works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // CSV import: show upload progress, then an indeterminate bar while the
  // server imports, then the server's report page.
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = document.getElementById("import-progress");
    var bar = document.getElementById("import-bar");
    box.hidden = false;
    form.setAttribute("aria-busy", "true");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      if (e.loaded === e.total) { bar.removeAttribute("value"); }
    });
    xhr.addEventListener("load", function () {
      // Show the server's answer (the report, or the form with its
      // errors) in place of this page's main content.
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var fresh = doc.querySelector("main");
      if (fresh) { document.querySelector("main").replaceWith(fresh); fresh.focus(); }
    });
    xhr.addEventListener("error", function () {
      box.hidden = true;
      form.removeAttribute("aria-busy");
      alert("The import could not be sent. Check the connection and try again.");
    });
    xhr.send(new FormData(form));
  });
});
