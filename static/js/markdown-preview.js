// Live preview of a Markdown field, rendered and sanitised by the server as annotators see it.
(function () {
  "use strict";
  document.querySelectorAll("[data-preview-for]").forEach(function (box) {
    var field = document.getElementById(box.dataset.previewFor);
    var out = box.querySelector(".prose");
    var token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
    var timer = null;
    function refresh() {
      var body = new URLSearchParams({ text: field.value });
      fetch(box.dataset.previewUrl, {
        method: "POST",
        headers: { "X-CSRFToken": token },
        body: body,
        credentials: "same-origin",
      })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          out.innerHTML = html; // the server's sanitised rendering
          box.hidden = !field.value.trim();
        });
    }
    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    if (field.value.trim()) refresh();
  });
})();
