export * from './errors';
export * from './layer';
export * from './control';
export * from './team';
