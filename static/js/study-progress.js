// Keeps the study dashboard live over a websocket: the counters, the annotator table, the
// labels per day and the expert queue; without it they show page-load values. Names and
// reasons are untrusted: text only.
(function () {
  const box = document.getElementById("progress");
  if (!box || !("WebSocket" in window)) return;

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  // The same cells as the template's rows, formatted the same way.
  function annotatorRow(a) {
    const row = document.createElement("tr");
    cell(row, a.name);
    cell(row, String(a.labels));
    cell(row, a.gold_answered ? a.gold_right + " / " + a.gold_answered : "—");
    cell(row, a.median_seconds === null ? "—" : a.median_seconds.toFixed(1) + " s");
    const flags = cell(row, "");
    if (a.paused_reason) {
      const paused = document.createElement("strong");
      paused.textContent = "paused";
      flags.append(paused, ": " + a.paused_reason);
    }
    if (a.speeder) flags.append(" speeder");
    if (a.straight_liner) flags.append(" straight-lining");
    return row;
  }

  function dayRow(d) {
    const row = document.createElement("tr");
    cell(row, d.day);
    cell(row, String(d.labels));
    return row;
  }

  function showAnnotators(summaries) {
    const body = document.getElementById("annotator-rows");
    if (!body) return;
    body.replaceChildren(...summaries.map(annotatorRow));
    document.getElementById("annotator-table").hidden = summaries.length === 0;
    document.getElementById("no-annotators").hidden = summaries.length > 0;
  }

  function showPerDay(days) {
    const body = document.getElementById("per-day-rows");
    if (!body) return;
    body.replaceChildren(...days.map(dayRow));
    document.getElementById("labels-per-day").hidden = days.length === 0;
  }

  const STATES = ["waiting", "reserved", "decided", "sent_back", "unresolved"];

  function row(cells) {
    const tr = document.createElement("tr");
    for (const text of cells) cell(tr, text);
    return tr;
  }

  // The expert queue: its counts by state, the reasons table, the experts, the days.
  function showQueue(queue) {
    for (const state of STATES) {
      const counter = document.querySelector('[data-queue-state="' + state + '"]');
      if (counter) counter.textContent = String(queue.states[state]);
    }
    const reasons = document.getElementById("queue-reason-rows");
    if (!reasons) return;
    reasons.replaceChildren(
      ...queue.reasons.map(function (r) {
        const tr = row(STATES.map((s) => String(r[s])));
        const name = document.createElement("td");
        const code = document.createElement("code");
        code.textContent = r.reason;
        name.appendChild(code);
        tr.prepend(name);
        return tr;
      })
    );
    document.getElementById("queue-expert-rows").replaceChildren(
      ...queue.experts.map((e) =>
        row([
          e.name,
          String(e.reserved),
          String(e.decided),
          String(e.sent_back),
          String(e.unresolved),
          e.median_seconds === null ? "—" : e.median_seconds.toFixed(1) + " s",
        ])
      )
    );
    document.getElementById("queue-day-rows").replaceChildren(
      ...queue.decisions_per_day.map((d) => row([d.day, String(d.decisions)]))
    );
    document.getElementById("queue-details").hidden = queue.reasons.length === 0;
    document.getElementById("queue-empty").hidden = queue.reasons.length > 0;
  }

  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + box.dataset.ws);
  socket.addEventListener("message", function (event) {
    const dashboard = JSON.parse(event.data);
    for (const [name, value] of Object.entries(dashboard)) {
      const counter = box.querySelector('[data-counter="' + name + '"]');
      if (counter) counter.textContent = value;
    }
    if (dashboard.annotator_summaries) showAnnotators(dashboard.annotator_summaries);
    if (dashboard.per_day) showPerDay(dashboard.per_day);
    if (dashboard.queue) showQueue(dashboard.queue);
  });
})();
