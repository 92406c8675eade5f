// Renders one output value: media as <img>/<video>/<audio> with a download link, text, or JSON.

import type { MediaValue } from "../api/types";

export function isMediaValue(value: unknown): value is MediaValue {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as MediaValue).url === "string" &&
    typeof (value as MediaValue).contentType === "string"
  );
}

function mediaKind(media: MediaValue): "image" | "video" | "audio" | "file" {
  const type = media.contentType.toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  return "file";
}

function fileName(name: string, media: MediaValue): string {
  const extension = media.contentType.split("/")[1]?.split(";")[0]?.replace("jpeg", "jpg").replace("+xml", "") ?? "bin";
  return `${name}.${extension}`;
}

export function OutputValue({ name, value, testId }: { name: string; value: unknown; testId: string }) {
  if (Array.isArray(value) && value.some(isMediaValue)) {
    return (
      <div className="output-list" data-testid={testId}>
        {value.map((item, index) => (
          <OutputValue key={index} name={`${name}-${index + 1}`} value={item} testId={`${testId}-${index}`} />
        ))}
      </div>
    );
  }
  if (isMediaValue(value)) {
    const kind = mediaKind(value);
    const size = value.width && value.height ? `${value.width}×${value.height}` : null;
    const duration = typeof value.durationS === "number" ? `${value.durationS.toFixed(1)} s` : null;
    return (
      <figure className="output-media" data-testid={testId} data-kind={kind}>
        {kind === "image" && <img src={value.url} alt={`Output ${name}`} loading="lazy" />}
        {kind === "video" && <video src={value.url} controls preload="metadata" aria-label={`Output ${name}`} />}
        {kind === "audio" && <audio src={value.url} controls preload="metadata" aria-label={`Output ${name}`} />}
        <figcaption>
          <span className="muted">{[value.contentType, size, duration].filter(Boolean).join(" · ")}</span>
          <a href={value.url} download={fileName(name, value)} target="_blank" rel="noreferrer" data-testid={`${testId}-download`}>
            Download
          </a>
        </figcaption>
      </figure>
    );
  }
  if (typeof value === "string") {
    return (
      <div className="output-text" data-testid={testId}>
        <pre>{value}</pre>
        <a
          href={`data:text/plain;charset=utf-8,${encodeURIComponent(value)}`}
          download={`${name}.txt`}
          data-testid={`${testId}-download`}
        >
          Download
        </a>
      </div>
    );
  }
  const json = JSON.stringify(value, null, 2) ?? String(value);
  return (
    <div className="output-text" data-testid={testId}>
      <pre className="mono">{json}</pre>
      <a href={`data:application/json;charset=utf-8,${encodeURIComponent(json)}`} download={`${name}.json`} data-testid={`${testId}-download`}>
        Download
      </a>
    </div>
  );
}

export function OutputList({ outputs, testIdPrefix = "output" }: { outputs: Record<string, unknown> | null | undefined; testIdPrefix?: string }) {
  const entries = Object.entries(outputs ?? {});
  if (entries.length === 0) return <p className="muted">No outputs.</p>;
  return (
    <div className="outputs">
      {entries.map(([name, value]) => (
        <section key={name} className="output" aria-label={`Output ${name}`}>
          <h4>{name}</h4>
          <OutputValue name={name} value={value} testId={`${testIdPrefix}-${name}`} />
        </section>
      ))}
    </div>
  );
}
