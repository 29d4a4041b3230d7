/** The typed configuration of every `thaw` command (schemas, flags, loading). */
export * from './types.js';
export { loadConfig, loadFromEnv, validate, type LoadOptions, type Loaded } from './load.js';
export { redactConfig, isSecretKey } from './redact.js';
export { describeField, fieldAt, topLevelKeys } from './describe.js';
export { ENV_VARS, CONFIG_FILE_ENV } from './env.js';
export * from './connections.js';
export { demoSpec, demoSchema, type DemoConfig } from './commands/demo.js';
export { runSpec, runSchema, type RunConfig } from './commands/run.js';
export { trainFmSpec, trainFmSchema, type TrainFmConfig } from './commands/train-fm.js';
export { produceSpec, produceSchema, type ProduceConfig } from './commands/produce.js';
export { rekeySpec, rekeySchema, type RekeyConfig } from './commands/rekey.js';
export { joinSpec, joinSchema, type JoinConfig } from './commands/join.js';
export { curvesSpec, curvesSchema, type CurvesConfig } from './commands/curves.js';
export { replaySpec, replaySchema, type ReplayConfig } from './commands/replay.js';
