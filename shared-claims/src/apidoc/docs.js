// Starts Swagger UI on the service's own description. Every URL is relative to the page
// (`/docs`), so the page also works behind a proxy that serves the service under a prefix.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
