// Save, validate and publish: the editor's conversations with the server, written as plain async
// functions over the stores so the toolbar, shortcuts and the run panel share one path.

import { ApiError, describeError } from "../api/client";
import { workflows } from "../api/endpoints";
import { useEditorStore } from "../stores/editorStore";
import { useGraphStore } from "../stores/graphStore";

function editor() {
  return useEditorStore.getState();
}

function graphState() {
  return useGraphStore.getState();
}

/** Saves the draft (PUT). Validation problems in a 422 answer are pinned on their nodes. */
export async function saveDraft(): Promise<boolean> {
  const state = graphState();
  if (!state.workflowId) return false;
  const edits = state.edits;
  const graph = state.getGraph();
  const name = state.name.trim() || "Untitled workflow";
  editor().setSaveState("saving");
  try {
    const saved = await workflows.update(state.workflowId, { name, description: state.description, graph });
    graphState().markSaved(edits);
    if (saved && typeof saved === "object" && saved.id) editor().setWorkflow(saved);
    editor().setSaveState("saved");
    editor().setMessage(null);
    return true;
  } catch (error) {
    editor().setSaveState("error");
    if (error instanceof ApiError && error.details.length > 0) {
      graphState().setIssues(error.details, graph);
      editor().setValidation("invalid");
    }
    editor().setMessage({ tone: "error", text: `Not saved: ${describeError(error)}` });
    return false;
  }
}

/** Asks the server whether the graph is valid and pins each error on its node. */
export async function validateGraph(options: { signal?: AbortSignal; quiet?: boolean } = {}): Promise<boolean | null> {
  const revision = graphState().revision;
  const graph = graphState().getGraph();
  editor().setValidation("checking");
  try {
    const result = await workflows.validate(graph, options.signal);
    // A newer edit makes this answer stale; the next validation will report on it.
    if (graphState().revision !== revision) return null;
    const errors = Array.isArray(result?.errors) ? result.errors : [];
    graphState().setIssues(errors, graph);
    const valid = result?.valid ?? errors.length === 0;
    editor().setValidation(valid ? "valid" : "invalid");
    if (!options.quiet) {
      editor().setMessage(
        valid
          ? { tone: "success", text: "The graph is valid." }
          : { tone: "error", text: `The graph has ${errors.length} problem${errors.length === 1 ? "" : "s"}.` },
      );
    }
    return valid;
  } catch (error) {
    if ((error as Error)?.name === "AbortError") return null;
    if (error instanceof ApiError && error.details.length > 0) {
      graphState().setIssues(error.details, graph);
      editor().setValidation("invalid");
      if (!options.quiet) editor().setMessage({ tone: "error", text: describeError(error) });
      return false;
    }
    editor().setValidation("error");
    if (!options.quiet) editor().setMessage({ tone: "error", text: `Could not validate: ${describeError(error)}` });
    return null;
  }
}

/** Saves unsaved changes, then publishes a new immutable version. */
export async function publishWorkflow(): Promise<number | null> {
  const { workflowId, dirty } = graphState();
  if (!workflowId) return null;
  if (dirty && !(await saveDraft())) return null;
  editor().setPublishing(true);
  try {
    const published = await workflows.publish(workflowId);
    const current = editor().workflow;
    if (current) editor().setWorkflow({ ...current, publishedVersion: published.version });
    editor().setMessage({ tone: "success", text: `Published version ${published.version}.` });
    return published.version;
  } catch (error) {
    if (error instanceof ApiError && error.details.length > 0) graphState().setIssues(error.details, graphState().getGraph());
    editor().setMessage({ tone: "error", text: `Not published: ${describeError(error)}` });
    return null;
  } finally {
    editor().setPublishing(false);
  }
}
