// Keeps the Judges section's queued and running runs up to date by asking the run API every
// two seconds; without it the section shows page-load values and the buttons still work.
(function () {
  const LIVE = ["queued", "running"];
  const rows = document.querySelectorAll("#judges tr[data-run-url]");

  function show(row, run) {
    const p = run.progress;
    const set = function (name, text) {
      const cell = row.querySelector('[data-field="' + name + '"]');
      if (cell) cell.textContent = text;
    };
    set("status", p.status);
    set("error", run.error);
    set("done", p.done + " / " + p.planned);
    set("failed", p.failed);
    set("remaining", p.remaining);
    set("tokens", p.prompt_tokens + " + " + p.completion_tokens);
    set("cost", "$" + p.cost.toFixed(4));
    row.dataset.status = p.status;
    if (!LIVE.includes(p.status)) {
      const cancel = row.querySelector("form[data-cancel]");
      if (cancel) cancel.remove();
    }
  }

  function poll(row) {
    fetch(row.dataset.runUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) return response.json();
        if (response.status < 500) return null; // logged out, or the run is gone: stop asking
        throw new Error("HTTP " + response.status);
      })
      .then(function (run) {
        if (!run) return;
        show(row, run);
        if (LIVE.includes(run.progress.status)) setTimeout(poll, 2000, row);
      })
      .catch(function () {
        setTimeout(poll, 10000, row); // the server is restarting, or the session ended
      });
  }

  rows.forEach(function (row) {
    if (LIVE.includes(row.dataset.status)) setTimeout(poll, 2000, row);
  });
})();
