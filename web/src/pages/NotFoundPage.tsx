import { Link } from "react-router-dom";
import { EmptyState } from "../components/Feedback";

export function NotFoundPage() {
  return (
    <div className="page">
      <EmptyState title="There is no page here." testId="not-found">
        <Link to="/workflows">Go to your workflows</Link>
      </EmptyState>
    </div>
  );
}
