/**
 * Every id the extension shares with package.json: views, commands, tree item context values
 * (which `menus` `when` clauses match), context keys and settings. Kept in one place so a rename
 * cannot leave a menu pointing at nothing; the extension-host suite checks package.json against it.
 */

export const VIEWS = {
  container: 'strata',
  layers: 'strata.layers',
  mappings: 'strata.mappings',
  team: 'strata.team',
  layerEditor: 'strata.layerEditor',
} as const;

export const COMMANDS = {
  activateLayer: 'strata.activateLayer',
  deactivateLayer: 'strata.deactivateLayer',
  swapLayer: 'strata.swapLayer',
  createLayer: 'strata.createLayer',
  addMapping: 'strata.addMapping',
  removeMapping: 'strata.removeMapping',
  resetLayer: 'strata.resetLayer',
  removeLayer: 'strata.removeLayer',
  editLayer: 'strata.editLayer',
  importLayer: 'strata.importLayer',
  exportLayer: 'strata.exportLayer',
  addView: 'strata.addView',
  joinTeam: 'strata.joinTeam',
  leaveTeam: 'strata.leaveTeam',
  showTeamHistory: 'strata.showTeamHistory',
  revertTeamChange: 'strata.revertTeamChange',
  followTeam: 'strata.followTeam',
  updateTeamFile: 'strata.updateTeamFile',
  showLog: 'strata.showLog',
  startAgent: 'strata.startAgent',
  restartAgent: 'strata.restartAgent',
  refresh: 'strata.refresh',
} as const;
export type CommandId = (typeof COMMANDS)[keyof typeof COMMANDS];

/** TreeItem.contextValue strings. */
export const ITEMS = {
  layerActive: 'layer.active',
  layerInactive: 'layer.inactive',
  mapping: 'layer.mapping',
  exclude: 'layer.exclude',
  delete: 'layer.delete',
  view: 'view',
  viewFailed: 'view.failed',
  row: 'view.row',
  teamNotJoined: 'team.notJoined',
  teamHeader: 'team.header',
  teamDecision: 'team.decision',
  teamPeer: 'team.peer',
  teamRelay: 'team.relay',
  teamInfo: 'team.info',
  teamHeld: 'team.held',
  teamContentDrift: 'team.contentDrift',
} as const;

/** setContext keys used in `when` clauses. */
export const CONTEXT_KEYS = {
  /** 'connecting' | 'connected' | 'down' */
  agent: 'strata.agent',
  teamJoined: 'strata.teamJoined',
} as const;

export const SETTINGS = {
  section: 'strata',
  home: 'home',
} as const;

/** SecretStorage key of a team's secret. */
export function secretKey(team: string): string {
  return `strata.team.secret/${team}`;
}
