// "Going further" sections start collapsed. tools/build_notebooks.py tags every
// cell of such a section `going-further` (nbconvert turns the tag into the class
// `celltag_going-further`, on a code cell or inside a markdown cell). Each
// section, from its "Going further: ..." heading to its last cell, becomes one
// <details> block whose summary is the heading. A link to a heading inside a
// collapsed block (the table of contents, a #fragment) opens the block first.
document$.subscribe(() => {
  // A reference solution inside a section is already its own collapsed block
  // (solutions.js): it moves into the section as a whole.
  const cells = [];
  for (const tagged of document.querySelectorAll(".celltag_going-further")) {
    const cell = tagged.closest(".jp-Cell");
    const unit = cell && (cell.closest("details.dl4keras-solution") || cell);
    if (unit && !cells.includes(unit)) cells.push(unit);
  }
  let block = null;
  for (const cell of cells) {
    if (cell.closest("details.dl4keras-going-further")) continue;
    const heading = cell.matches("details") ? null : cell.querySelector("h2");
    const starts = heading && /^going further/i.test(heading.textContent.trim());
    if (starts || !block || block.nextElementSibling !== cell) {
      block = document.createElement("details");
      block.className = "abstract dl4keras-going-further";
      const summary = document.createElement("summary");
      summary.textContent = heading ? heading.textContent.replace(/¶$/, "").trim() : "Going further";
      block.appendChild(summary);
      cell.before(block);
    }
    block.appendChild(cell);
  }
  const reveal = () => {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id && document.getElementById(id);
    for (let node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    if (target) target.scrollIntoView();
  };
  window.addEventListener("hashchange", reveal);
  reveal();
});
