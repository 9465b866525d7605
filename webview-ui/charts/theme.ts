/** Colours from the VS Code theme's variables, with fallbacks for a page outside VS Code. */
const PALETTE = ['blue', 'orange', 'green', 'red', 'purple', 'yellow'];
const FALLBACK: Record<string, string> = {
  blue: '#3794ff',
  orange: '#d18616',
  green: '#89d185',
  red: '#f14c4c',
  purple: '#b180d7',
  yellow: '#cca700',
};

function variable(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export interface Theme {
  foreground: string;
  grid: string;
  background: string;
  /** The colour of the n-th line of a chart. */
  line(n: number): string;
}

/** Read when charts are built, so a theme switch (which rebuilds them) takes effect. */
export function currentTheme(): Theme {
  const colours = PALETTE.map((name) => variable(`--vscode-charts-${name}`, FALLBACK[name]));
  return {
    foreground: variable('--vscode-foreground', '#cccccc'),
    grid: variable('--vscode-editorWidget-border', 'rgba(128, 128, 128, 0.25)'),
    background: variable('--vscode-editor-background', '#1e1e1e'),
    line: (n) => colours[n % colours.length],
  };
}

/** The colour at a lower opacity, for raw values drawn behind the smoothed line. */
export function faded(colour: string): string {
  return `color-mix(in srgb, ${colour} 30%, transparent)`;
}
