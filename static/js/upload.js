// The upload pages. The form: a file can also be dropped onto the drop zone (the file input
// works without this). An upload's page: while the upload is queued or running, asks the same
// address for its state every second (Accept: application/json) and shows it; without this
// the page shows its state when loaded. File names and errors are untrusted: text only.
(function () {
  const zone = document.getElementById("drop-zone");
  if (zone) {
    const input = zone.querySelector('input[type="file"]');
    const chosen = document.getElementById("chosen-file");
    const showChosen = function () {
      chosen.textContent = input.files.length ? input.files[0].name : "";
    };
    zone.querySelector(".drop-hint").hidden = false;
    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
    });
    zone.addEventListener("dragleave", function () {
      zone.classList.remove("over");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      const dropped = event.dataTransfer.files;
      if (!dropped.length) return;
      const one = new DataTransfer(); // the input takes one file
      one.items.add(dropped[0]);
      input.files = one.files;
      showChosen();
      input.focus();
    });
  }

  const box = document.getElementById("upload");
  const LIVE = ["queued", "running"];
  if (!box || !LIVE.includes(box.dataset.state)) return;

  function size(bytes) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (bytes >= 1024 && i < units.length - 1) {
      bytes /= 1024;
      i += 1;
    }
    return (i ? bytes.toFixed(1) : String(bytes)) + " " + units[i];
  }

  function show(upload) {
    box.dataset.state = upload.state;
    document.getElementById("upload-state").textContent = upload.state_display;
    const bar = document.getElementById("upload-progress");
    const total = upload.total_bytes || 1;
    bar.max = total;
    bar.value = upload.done_bytes;
    bar.textContent = Math.round((100 * upload.done_bytes) / total) + "%";
    document.getElementById("upload-read").textContent =
      size(upload.done_bytes) + " of " + size(upload.total_bytes) + " read";
    const summary = document.getElementById("upload-summary");
    summary.textContent = upload.summary;
    summary.hidden = !upload.summary;
    const items = upload.errors.map(function (error) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = error;
      li.appendChild(code);
      return li;
    });
    document.getElementById("upload-errors").replaceChildren(...items);
    document.getElementById("upload-errors-box").hidden = items.length === 0;
  }

  function poll() {
    fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) return response.json();
        if (response.status < 500) return null; // logged out, or the upload is gone: stop
        throw new Error("HTTP " + response.status);
      })
      .then(function (upload) {
        if (!upload) return;
        show(upload);
        if (LIVE.includes(upload.state)) setTimeout(poll, 1000);
      })
      .catch(function () {
        setTimeout(poll, 5000); // the server is restarting
      });
  }

  setTimeout(poll, 1000);
})();
