// Reference solutions start collapsed. A solution is a notebook cell tagged
// `solution` (nbconvert gives it the class `celltag_solution`); consecutive
// solution cells share one <details> block. Runs on every page load (Material's
// `document$`, which also fires with instant navigation) and only once per cell.
document$.subscribe(() => {
  let block = null;
  for (const cell of document.querySelectorAll(".jp-Cell.celltag_solution")) {
    if (cell.closest("details.dl4keras-solution")) continue;
    if (!block || block.nextElementSibling !== cell) {
      block = document.createElement("details");
      block.className = "success dl4keras-solution";
      const summary = document.createElement("summary");
      summary.textContent = "Reference solution (try the exercise first)";
      block.appendChild(summary);
      cell.before(block);
    }
    block.appendChild(cell);
  }
});
