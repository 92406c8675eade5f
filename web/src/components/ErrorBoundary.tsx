// Last line of defence: a rendering error shows a message and a way back, never a blank page.

import { Component, type ErrorInfo, type ReactNode } from "react";

interface State {
  error: Error | null;
}

export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: unknown }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidUpdate(previous: { resetKey?: unknown }): void {
    if (this.state.error && previous.resetKey !== this.props.resetKey) this.setState({ error: null });
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error("nodeloom: render error", error, info.componentStack);
  }

  render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="page">
        <div className="alert alert-error" role="alert" data-testid="crash-message">
          <div>
            <strong>This page hit an error.</strong> {this.state.error.message}
          </div>
          <button type="button" className="btn btn-small" onClick={() => this.setState({ error: null })} data-testid="crash-retry">
            Try again
          </button>
          <a className="btn btn-small" href="/workflows">
            Back to workflows
          </a>
        </div>
      </div>
    );
  }
}
