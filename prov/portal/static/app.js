// hotdesk portal: progressive enhancement only; every form works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // CSV import: show upload progress, then the server's progress per row
  // (it streams NDJSON lines for ?progress=1), then its report page.
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = document.getElementById("import-progress");
    var bar = document.getElementById("import-bar");
    var label = box.querySelector("label");
    box.hidden = false;
    form.setAttribute("aria-busy", "true");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action + "?progress=1");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      if (e.loaded === e.total) { bar.removeAttribute("value"); }
    });
    var seen = 0, html = null;
    var phases = { preparing: "Checking rows and hashing passwords", storing: "Storing users" };
    function readLines() {
      var text = xhr.responseText, end;
      while ((end = text.indexOf("\n", seen)) >= 0) {
        var line = text.slice(seen, end);
        seen = end + 1;
        var msg;
        try { msg = JSON.parse(line); } catch (err) { return; }
        if (msg.progress) {
          var p = msg.progress;
          bar.max = Math.max(p.total, 1);
          bar.value = p.done;
          label.textContent = (phases[p.phase] || p.phase) + ": " + p.done + " of " + p.total + " rows";
        } else if (typeof msg.html === "string") {
          html = msg.html;
        }
      }
    }
    xhr.addEventListener("progress", readLines);
    xhr.addEventListener("load", function () {
      readLines();
      // Show the server's answer (the report, or the form with its
      // errors) in place of this page's main content; an answer that is
      // not the stream (an error page) is shown as it is.
      var doc = new DOMParser().parseFromString(html === null ? xhr.responseText : html, "text/html");
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
