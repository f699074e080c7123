export * from './errors';
export * from './layer';
export * from './control';
export * from './team';
export * from './state';
export type { Issue } from './schema';
export { issueField, issueMessage, parseJson, parseValue, utf8Length } from './schema';
export * from './relay';
export * from './nats';
