// A plain SVG bar chart: one bar per day, value in the tooltip, a few date ticks.

export interface Bar {
  label: string;
  value: number;
}

export function BarChart({ title, bars, testId, unit = "", height = 200 }: { title: string; bars: Bar[]; testId: string; unit?: string; height?: number }) {
  // A fixed drawing width that the SVG scales uniformly, so labels never stretch.
  const width = Math.max(960, bars.length * 24);
  const padTop = 12;
  const padBottom = 22;
  const padLeft = 36;
  const plotHeight = height - padTop - padBottom;
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const slot = (width - padLeft) / Math.max(1, bars.length);
  const barWidth = Math.max(2, slot * 0.7);
  const tickEvery = Math.max(1, Math.ceil(bars.length / 7));
  const total = bars.reduce((sum, bar) => sum + bar.value, 0);

  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>
        <strong>{title}</strong> <span className="muted">total {Number.isInteger(total) ? total : total.toFixed(2)}{unit}</span>
      </figcaption>
      {bars.length === 0 ? (
        <p className="muted">No data for this period.</p>
      ) : (
        <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${bars.map((bar) => `${bar.label} ${bar.value}`).join(", ")}`} preserveAspectRatio="xMidYMid meet">
          <line x1={padLeft} y1={padTop + plotHeight} x2={width} y2={padTop + plotHeight} className="chart-axis" />
          <text x={padLeft - 6} y={padTop + 4} textAnchor="end" className="chart-label">{max}</text>
          <text x={padLeft - 6} y={padTop + plotHeight} textAnchor="end" className="chart-label">0</text>
          {bars.map((bar, index) => {
            const barHeight = (bar.value / max) * plotHeight;
            const x = padLeft + index * slot + (slot - barWidth) / 2;
            return (
              <g key={bar.label + index}>
                <rect x={x} y={padTop + plotHeight - barHeight} width={barWidth} height={Math.max(barHeight, bar.value > 0 ? 1 : 0)} className="chart-bar" data-testid={`${testId}-bar`}>
                  <title>{`${bar.label}: ${bar.value}${unit}`}</title>
                </rect>
                {index % tickEvery === 0 && (
                  <text x={x + barWidth / 2} y={height - 6} textAnchor="middle" className="chart-label">
                    {bar.label.slice(5)}
                  </text>
                )}
              </g>
            );
          })}
        </svg>
      )}
    </figure>
  );
}
