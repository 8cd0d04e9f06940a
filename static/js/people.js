// The people page: a Copy button beside each link (invitations, the crowd join link). Without
// it the links are plain read-only fields to select and copy by hand.
(function () {
  if (!navigator.clipboard) return; // only on https or localhost
  document.querySelectorAll("input[data-copy]").forEach(function (input) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy: " + input.getAttribute("aria-label"));
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
    });
    input.after(button);
  });
})();
