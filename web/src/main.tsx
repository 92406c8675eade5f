import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { configureClient } from "./api/client";
import { App } from "./App";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { useSessionStore } from "./stores/sessionStore";
import { installTestApi } from "./testApi";

configureClient({
  onUnauthorized: () => useSessionStore.getState().expired(),
  refreshCsrf: () => useSessionStore.getState().refreshCsrf(),
});
installTestApi();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ErrorBoundary>
      <BrowserRouter>
        <App />
      </BrowserRouter>
    </ErrorBoundary>
  </StrictMode>,
);
