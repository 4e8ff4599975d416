// Put at the top of a copy of a Snakemake report (tests/test_workflow.py): once the page has
// loaded, every image the report embeds (the `results` its own scripts define, as data URIs)
// is decoded by the browser, and what came out is written into the page as JSON, for
// `chromium --headless --dump-dom` to print. Errors the report's scripts raise are listed too.
window.vgg16Errors = [];
window.addEventListener("error", (event) => window.vgg16Errors.push(String(event.message)));
window.addEventListener("load", async () => {
  const images = [];
  for (const [path, result] of Object.entries(results)) {
    if (!result.mime_type.startsWith("image/")) continue;
    const image = new Image();
    const loaded = await new Promise((resolve) => {
      image.onload = () => resolve(true);
      image.onerror = () => resolve(false);
      image.src = result.data_uri;
    });
    images.push({ path, loaded, width: image.naturalWidth, height: image.naturalHeight });
  }
  const report = document.createElement("pre");
  report.id = "vgg16-probe";
  report.textContent = JSON.stringify({
    images,
    categories,
    errors: window.vgg16Errors,
    text: document.body.innerText,
  });
  document.body.appendChild(report);
});
