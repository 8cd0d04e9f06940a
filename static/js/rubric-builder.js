// The rubric builder: a form per question over the JSON editor, which stays the one source
// of truth (the page saves the textarea). Every change rewrites the JSON and asks the server
// for the labelling page's preview, or for the definition's problems with their lines.
(function () {
  "use strict";
  var builder = document.getElementById("builder");
  var textarea = document.getElementById("id_definition");
  if (!builder || !textarea) return;
  var cards = document.getElementById("question-cards");
  var nameInput = document.getElementById("rubric-name");
  var preview = document.getElementById("preview");
  var problems = document.getElementById("live-problems");
  var token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  var readOnly = !document.getElementById("save-rubric");
  var rubric = null;
  var timer = null;

  var DEFAULTS = {
    pairwise: { allow_tie: true },
    likert: { scale: 5 },
    checklist: { items: ["First row"] },
    binary: { needs_reference: false },
    categorical: { choices: ["first", "second"], multiple: false },
    text: {},
  };
  var TYPE_FIELDS = {
    pairwise: ["allow_tie", "strength"],
    likert: ["scale", "labels"],
    checklist: ["items"],
    binary: ["needs_reference"],
    categorical: ["choices", "multiple"],
    text: [],
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "checked" || k === "disabled") node[k] = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.append(c); });
    return node;
  }

  function parse() {
    try {
      var data = JSON.parse(textarea.value);
      if (data && typeof data === "object" && Array.isArray(data.questions)) {
        rubric = data;
        return true;
      }
    } catch (e) { /* the server lists the problem with its line */ }
    return false;
  }

  function write() {
    textarea.value = JSON.stringify(rubric, null, 2);
    schedulePreview();
  }

  var uid = 0;
  function input(label, value, onChange, type) {
    var id = "b" + (++uid);
    var box = el("input", { id: id, type: type || "text" });
    if (type === "checkbox") box.checked = !!value;
    else box.value = value === undefined ? "" : value;
    box.addEventListener(type === "checkbox" ? "change" : "input", function () {
      onChange(type === "checkbox" ? box.checked : box.value);
      write();
    });
    var lab = el("label", { for: id, text: label });
    return el("div", { class: "field" + (type === "checkbox" ? " check" : "") },
      type === "checkbox" ? [box, " ", lab] : [lab, " ", box]);
  }

  function lines(label, values, onChange, hint) {
    var id = "b" + (++uid);
    var area = el("textarea", { id: id, rows: "3" });
    area.value = values.join("\n");
    area.addEventListener("input", function () {
      onChange(area.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean));
      write();
    });
    return el("div", { class: "field" }, [
      el("label", { for: id, text: label }), " ", area, el("small", { class: "help-text", text: hint }),
    ]);
  }

  function setOrDelete(q, key, value, absent) {
    if (value === absent) delete q[key]; else q[key] = value;
  }

  function typeFields(q) {
    var out = [];
    if (q.type === "pairwise") {
      out.push(input("Allow a tie", q.allow_tie !== false, function (v) { q.allow_tie = v; }, "checkbox"));
      out.push(input("Ask how much better (strength)", !!q.strength, function (v) {
        setOrDelete(q, "strength", v, false);
      }, "checkbox"));
    } else if (q.type === "likert") {
      out.push(input("Scale (points)", q.scale, function (v) { q.scale = parseInt(v, 10) || v; }, "number"));
      var anchors = Object.keys(q.labels || {}).map(function (k) { return k + "=" + q.labels[k]; });
      out.push(lines("Anchors", anchors, function (rows) {
        var labels = {};
        rows.forEach(function (r) {
          var i = r.indexOf("=");
          if (i > 0) labels[r.slice(0, i).trim()] = r.slice(i + 1).trim();
        });
        setOrDelete(q, "labels", Object.keys(labels).length ? labels : null, null);
      }, "One per line: 1=Very poor"));
    } else if (q.type === "checklist") {
      var perItem = q.items === "per_item";
      out.push(input("Rows come with each item (per item)", perItem, function (v) {
        q.items = v ? "per_item" : ["First row"];
        render();
      }, "checkbox"));
      if (!perItem) {
        out.push(lines("Rows", q.items || [], function (rows) { q.items = rows; }, "One question per line"));
      }
    } else if (q.type === "binary") {
      out.push(input("Needs the item's reference answer", !!q.needs_reference, function (v) {
        q.needs_reference = v;
      }, "checkbox"));
    } else if (q.type === "categorical") {
      out.push(lines("Choices", q.choices || [], function (rows) { q.choices = rows; }, "One per line"));
      out.push(input("Several choices allowed", !!q.multiple, function (v) { q.multiple = v; }, "checkbox"));
    }
    return out;
  }

  function move(i, by) {
    var qs = rubric.questions;
    var j = i + by;
    if (j < 0 || j >= qs.length) return;
    var q = qs.splice(i, 1)[0];
    qs.splice(j, 0, q);
    write();
    render();
    cards.children[j].querySelector("button[data-move='" + (by < 0 ? "up" : "down") + "']").focus();
  }

  function card(q, i) {
    var typeId = "b" + (++uid);
    var type = el("select", { id: typeId });
    Object.keys(DEFAULTS).forEach(function (t) {
      var option = el("option", { value: t, text: t });
      option.selected = t === q.type;
      type.append(option);
    });
    type.addEventListener("change", function () {
      TYPE_FIELDS[q.type].forEach(function (k) { delete q[k]; });
      q.type = type.value;
      Object.assign(q, JSON.parse(JSON.stringify(DEFAULTS[q.type])));
      write();
      render();
    });
    var buttons = el("div", { class: "card-actions" }, [
      el("button", { type: "button", "data-move": "up", text: "Move up" }),
      el("button", { type: "button", "data-move": "down", text: "Move down" }),
      el("button", { type: "button", "data-remove": "", text: "Remove" }),
    ]);
    buttons.children[0].addEventListener("click", function () { move(i, -1); });
    buttons.children[1].addEventListener("click", function () { move(i, 1); });
    buttons.children[2].addEventListener("click", function () {
      rubric.questions.splice(i, 1);
      write();
      render();
    });
    return el("li", { class: "question-card", "data-key": q.key || "" }, [
      el("fieldset", {}, [
        el("legend", { text: "Question " + (i + 1) + (q.key ? " (" + q.key + ")" : "") }),
        input("Key", q.key, function (v) { q.key = v; }),
        el("div", { class: "field" }, [el("label", { for: typeId, text: "Type" }), " ", type]),
        input("Prompt", q.prompt, function (v) { setOrDelete(q, "prompt", v, ""); }),
        input("Required", q.required !== false, function (v) { setOrDelete(q, "required", v, true); }, "checkbox"),
        input("Offer \u201cunable to assess\u201d", !!q.allow_unable, function (v) {
          setOrDelete(q, "allow_unable", v, false);
        }, "checkbox"),
      ].concat(typeFields(q), [buttons])),
    ]);
  }

  function render() {
    cards.replaceChildren.apply(cards, rubric.questions.map(card));
    nameInput.value = rubric.name || "";
    if (readOnly) builder.querySelectorAll("input, select, textarea, button").forEach(function (n) { n.disabled = true; });
  }

  function showProblems(list) {
    problems.replaceChildren();
    if (!list.length) return;
    var items = list.map(function (p) {
      return el("li", { text: "line " + p.line + ": " + p.message });
    });
    problems.append(el("div", { class: "error" }, [
      el("p", { text: list.length + (list.length === 1 ? " problem:" : " problems:") }),
      el("ol", { class: "json-lines" }, items),
    ]));
  }

  function refreshPreview() {
    fetch(builder.dataset.previewUrl, {
      method: "POST",
      headers: { "X-CSRFToken": token },
      body: new URLSearchParams({ definition: textarea.value }),
      credentials: "same-origin",
    })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        showProblems(answer.problems || []);
        if (answer.html !== undefined) preview.innerHTML = answer.html; // our own templates' output
      });
  }

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 250);
  }

  nameInput.addEventListener("input", function () { rubric.name = nameInput.value; write(); });
  document.getElementById("add-question").addEventListener("click", function () {
    var t = document.getElementById("new-question-type").value;
    var n = rubric.questions.length + 1;
    var q = Object.assign({ key: t + "_" + n, type: t, prompt: "" }, JSON.parse(JSON.stringify(DEFAULTS[t])));
    rubric.questions.push(q);
    write();
    render();
    cards.lastElementChild.querySelector("input").focus();
  });
  textarea.addEventListener("input", function () {
    if (parse()) render();
    schedulePreview();
  });
  preview.addEventListener("submit", function (e) { e.preventDefault(); });

  if (parse()) {
    builder.hidden = false;
    render();
  }
  if (document.getElementById("problems")) schedulePreview();
})();
