// Math rendering with the vendored KaTeX (no CDN): `$...$`, `$$...$$` in the
// notebooks, `\(...\)` and `\[...\]` from pymdownx.arithmatex in Markdown pages.
// Material's `document$` emits on every page load, instant navigation included.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    ignoredClasses: ["jp-OutputArea", "md-search", "md-nav"],
    throwOnError: false,
  });
});
