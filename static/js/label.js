// Keyboard-first labelling and adjudication: one question is active at a time; its keys answer
// it and move on; Enter sends the form's primary button, a letter a button's data-shortcut.
// Without this script the page is a plain form that works with the mouse.
(function () {
  const form = document.getElementById("label-form");
  if (!form) {
    // The done page: P still goes back to the last item labelled.
    document.addEventListener("keydown", (event) => {
      const previous = document.getElementById("previous-link");
      const plain = !(event.altKey || event.metaKey || event.ctrlKey);
      if (plain && event.key.toLowerCase() === "p" && previous) location.href = previous.href;
    });
    return;
  }
  const questions = Array.from(form.querySelectorAll("fieldset.question"));
  const help = document.getElementById("help");
  const helpButton = document.getElementById("help-button");
  const PAIRWISE_LETTERS = { a: "1", b: "2", t: "3" }; // A / B / Tie by position shown
  let active = 0;

  function activate(index) {
    if (!questions.length) return;
    active = Math.max(0, Math.min(index, questions.length - 1));
    questions.forEach((q, i) => q.classList.toggle("active", i === active));
    const q = questions[active];
    const text = q.querySelector("textarea");
    const target = text || q.querySelector("input:checked") || q.querySelector("input");
    if (target) target.focus({ preventScroll: true });
    q.scrollIntoView({ block: "nearest" });
  }

  // The next or previous question shown (hidden strength rows are passed over); false at an end.
  function move(step) {
    let i = active + step;
    while (questions[i] && questions[i].hidden) i += step;
    if (!questions[i]) return false;
    activate(i);
    return true;
  }

  function firstUnanswered() {
    const i = questions.findIndex(
      (q) => q.dataset.type !== "text" && !q.hidden && !q.querySelector("input:checked"),
    );
    return i === -1 ? 0 : i;
  }

  // A strength row is asked only while its pairwise answer names a response (not a tie, not
  // unable); disabled, it is left out of the form.
  function syncStrength() {
    form.querySelectorAll("fieldset[data-strength-of]").forEach((row) => {
      const name = CSS.escape(row.dataset.strengthOf);
      const answer = form.querySelector('input[name="' + name + '"]:checked');
      const prefers = answer !== null && answer.value !== "tie" && answer.value !== "unable";
      row.hidden = !prefers;
      row.disabled = !prefers;
    });
  }

  function toggleHelp(show) {
    help.hidden = !show;
    helpButton.setAttribute("aria-expanded", String(show));
  }

  function submit() {
    const button = form.querySelector("button.primary");
    if (button) form.requestSubmit(button); // a read-only page has none
  }

  questions.forEach((q, i) => q.addEventListener("focusin", () => {
    active = i;
    questions.forEach((other, j) => other.classList.toggle("active", j === i));
  }));
  helpButton.addEventListener("click", () => toggleHelp(help.hidden));
  form.addEventListener("change", syncStrength);

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey) return;
    const field = event.target;
    const inText =
      field.tagName === "TEXTAREA" ||
      (field.tagName === "INPUT" && field.type !== "radio" && field.type !== "checkbox");
    if (inText) {
      if (event.key === "Escape") {
        field.blur();
        const button = form.querySelector("button.primary");
        if (!move(1) && button) button.focus();
      } else if (event.key === "Enter" && field.dataset.enterButton) {
        // A field beside its own button (the number of labels to ask for) sends that one.
        event.preventDefault();
        document.getElementById(field.dataset.enterButton).click();
      } else if (event.key === "Enter" && event.ctrlKey) {
        event.preventDefault();
        submit();
      }
      return;
    }
    if (event.ctrlKey) return;
    const key = event.key.toLowerCase();
    if (event.key === "?") return toggleHelp(help.hidden);
    if (event.key === "Escape") return toggleHelp(false);
    if (event.key === "Enter") {
      if (event.target.tagName === "BUTTON" || event.target.tagName === "A") return;
      event.preventDefault();
      return submit();
    }
    if (key === "j" || event.key === "ArrowDown") {
      event.preventDefault();
      return move(1);
    }
    if (key === "k" || event.key === "ArrowUp") {
      event.preventDefault();
      return move(-1);
    }
    const q = questions[active];
    const wanted = q && q.dataset.type === "pairwise" && PAIRWISE_LETTERS[key] ? PAIRWISE_LETTERS[key] : key;
    const choice = q && q.querySelector('input[data-key="' + CSS.escape(wanted) + '"]');
    if (choice) {
      event.preventDefault();
      choice.checked = choice.type === "checkbox" ? !choice.checked : true;
      choice.dispatchEvent(new Event("change", { bubbles: true }));
      if (choice.type !== "checkbox") move(1);
      return;
    }
    const shortcut = form.querySelector('button[data-shortcut="' + CSS.escape(key) + '"]');
    if (shortcut) return shortcut.click();
    if (key === "p") {
      const previous = document.getElementById("previous-link");
      if (previous) location.href = previous.href;
    }
  });

  // Time actually spent: while the page is visible, sent with the answer.
  const elapsed = document.getElementById("elapsed");
  const activeSeconds = document.getElementById("active-seconds");
  let spent = 0;
  let visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  function seconds() {
    return (spent + (visibleSince === null ? 0 : performance.now() - visibleSince)) / 1000;
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") visibleSince = performance.now();
    else if (visibleSince !== null) {
      spent += performance.now() - visibleSince;
      visibleSince = null;
    }
  });
  if (elapsed) {
    setInterval(() => {
      const s = Math.floor(seconds());
      elapsed.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    }, 1000);
  }
  if (activeSeconds) {
    form.addEventListener("submit", () => {
      activeSeconds.value = seconds().toFixed(2);
    });
  }

  syncStrength();
  activate(firstUnanswered());
})();
