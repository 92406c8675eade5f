// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { OutputList } from "./OutputValue";

afterEach(cleanup);

describe("OutputList", () => {
  it("renders images, videos, text and JSON with download links", () => {
    render(
      <OutputList
        outputs={{
          image: { url: "https://f/a.png", contentType: "image/png", width: 64, height: 64 },
          clip: { url: "https://f/b.mp4", contentType: "video/mp4", durationS: 2 },
          caption: "a red fox",
          meta: { seed: 1 },
        }}
        testIdPrefix="out"
      />,
    );
    expect(screen.getByAltText("Output image")).toHaveAttribute("src", "https://f/a.png");
    expect(screen.getByTestId("out-clip").querySelector("video")).toHaveAttribute("src", "https://f/b.mp4");
    expect(screen.getByTestId("out-image-download")).toHaveAttribute("download", "image.png");
    expect(screen.getByTestId("out-caption")).toHaveTextContent("a red fox");
    expect(screen.getByTestId("out-meta")).toHaveTextContent('"seed": 1');
  });

  it("says when there are no outputs", () => {
    render(<OutputList outputs={{}} />);
    expect(screen.getByText("No outputs.")).toBeInTheDocument();
  });
});
