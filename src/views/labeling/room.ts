/**
 * Open Labeling gives the Labeling view room: when what it shows does not fit (a short sidebar, or
 * one with many views), the view moves to the panel, where it spans the window's width, and the
 * panel is maximised if it still does not fit. No `vscode` import, so it can be tested with fakes.
 */
import type { ViewLayout } from '../../protocol/labeling';

/** The panel's view container for the Labeling view (package.json's viewsContainers.panel). */
export const LABELING_PANEL = 'workbench.view.extension.rlhfLabeling';

export interface RoomHost {
  run(command: string, ...args: unknown[]): Thenable<unknown>;
  /** The view's next layout report, or undefined when none comes within `ms` (the view did not change). */
  nextLayout(ms: number): Promise<ViewLayout | undefined>;
  /** The latest layout report. */
  lastLayout(): ViewLayout | undefined;
}

/** How Open Labeling left the view. */
export type Room = 'fits' | 'unknown' | 'moved' | 'maximized' | 'picked';

/** How long a shown or moved view has to load and report its size. */
const REPORT_MS = 2000;

export async function revealWithRoom(host: RoomHost, viewId: string): Promise<Room> {
  const focus = () => host.run(`${viewId}.focus`);
  await focus();
  const shown = (await host.nextLayout(REPORT_MS)) ?? host.lastLayout();
  if (!shown) return 'unknown';
  if (shown.fits) return 'fits';
  await host.run('vscode.moveViews', { viewIds: [viewId], destinationId: LABELING_PANEL });
  await focus();
  const moved = await host.nextLayout(REPORT_MS);
  if (!moved) {
    // The view did not move (it is there already, or this VS Code has no such container): let the person pick a place.
    await host.run('workbench.action.moveFocusedView', viewId);
    return 'picked';
  }
  if (moved.fits) return 'moved';
  await host.run('workbench.action.toggleMaximizedPanel');
  return 'maximized';
}
