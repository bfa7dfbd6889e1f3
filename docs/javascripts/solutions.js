// Reference solutions start collapsed. A solution is a notebook cell tagged
// `solution`: nbconvert gives a code cell the class `celltag_solution`, and a
// markdown cell's rendered content (inside the cell). Consecutive solution
// cells share one <details> block. An exercise's solution cells arrive already
// in one from the site hook (docs/hooks/dl4keras_site.py) and are left as they
// are. Runs on every page load (Material's `document$`, which also fires with
// instant navigation) and only once per cell.
document$.subscribe(() => {
  const cells = [];
  for (const tagged of document.querySelectorAll(".celltag_solution")) {
    const cell = tagged.closest(".jp-Cell");
    if (cell && !cells.includes(cell)) cells.push(cell);
  }
  let block = null;
  for (const cell of cells) {
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
