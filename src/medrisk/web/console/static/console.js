// MedRisk console: the only script. Progressive: every page works without it except the
// release upload, which streams the chosen file as the request body (no multipart spooling).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = form.querySelector("input[type=file]");
      var status = form.querySelector(".upload-status");
      var button = form.querySelector("button");
      if (!input.files.length) { return; }
      var file = input.files[0];
      status.textContent = form.dataset.busy;
      button.disabled = true;
      fetch(form.dataset.upload + "?file_name=" + encodeURIComponent(file.name), {
        method: "POST",
        body: file,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": form.dataset.csrf, "Content-Type": "application/vnd.android.package-archive" }
      }).then(function (r) { return r.json(); }).then(function (body) {
        if (body.ok) { window.location.assign(body.redirect); return; }
        status.textContent = body.message || body.code || "error";
        status.classList.add("alert");
        button.disabled = false;
      }).catch(function (e) {
        status.textContent = String(e);
        status.classList.add("alert");
        button.disabled = false;
      });
    });
  });
});
