import { z } from 'zod';

/**
 * `adapterOptions` of `thaw run` and `thaw replay`: per adapter name, the options of
 * adapters/registry.ts ReleaseAdapterOptions (only the section of the adapter built is read; the
 * `none` baseline of a meta-learned release reads that release's adapter section, since it starts
 * states the same way). Every key is optional: unset means the adapter's own default, which the
 * description states (test/unit/config/adapter-options.test.ts keeps them equal to the adapters'
 * constants; nothing is imported from adapters/, so `thaw --help` does not load TensorFlow.js; the
 * compiler checks the parsed shape where `thaw run` hands it to createAdapterFromRelease).
 * The adapters validate again at construction, with the same key names.
 */

const positiveNumber = z.number().finite('expected a finite number').positive('expected a number > 0');
const nonNegativeNumber = z.number().finite('expected a finite number').nonnegative('expected a number >= 0');
const positiveInt = z.number().int('expected an integer').positive('expected an integer > 0');
const nonNegativeInt = z.number().int('expected an integer').nonnegative('expected an integer >= 0');

const fmAdagrad = z
  .object({
    learningRate: positiveNumber.optional().describe('Adagrad learning rate of the entity vector e (dimensionless). @default 0.1'),
    l2: nonNegativeNumber.optional().describe('L2 penalty pulling e back towards the prior vector, per event. @default 0.001'),
    biasVariance: nonNegativeNumber.optional().describe("Prior variance of a new entity's bias (logit²) in the bias filter, overriding the release's; 0 freezes the bias. @default release"),
    biasDrift: nonNegativeNumber.optional().describe("Variance the bias gains per event (logit²), overriding the release's. @default release"),
    sessionDecay: nonNegativeNumber
      .lt(1, 'expected a number < 1')
      .optional()
      .describe("Share of the session bias kept from one of an entity's events to the next, in [0, 1), overriding the release's. @default release"),
    sessionVariance: nonNegativeNumber.optional().describe("Variance the session bias gains per event (logit²), 0 = no session bias, overriding the release's. @default release"),
    initialAccumulator: positiveNumber.optional().describe("Adagrad accumulator at an entity's first event. @default 0.1"),
    init: z.enum(['release', 'zero']).optional().describe("Where a cold entity starts: the release's prior view, or zeros. @default release"),
  })
  .strict();

/** The bias options every meta-learned adapter takes (adapters/entity-bias.ts EntityBiasOptions). */
const metaBias = {
  biasVariance: nonNegativeNumber
    .optional()
    .describe("Prior variance of a new entity's bias (logit²) in the bias filter, overriding the release's biasFilter; 0 freezes the bias at 0. @default release"),
  biasDrift: nonNegativeNumber.optional().describe("Variance the bias gains per event (logit²), overriding the release's. @default release"),
  crossSide: z.enum(['bias', 'off']).optional().describe("bias: the other side's entity's fresh bias (its worker's view) enters the logit; off: only this side's own bias. @default bias"),
};

const emerg = z
  .object({
    learningRate: positiveNumber.optional().describe('Step size of the item-ID embedding (dimensionless). @default 0.5'),
    graphLrScale: nonNegativeNumber.optional().describe('Step size of the item graph as a multiple of learningRate; 0 keeps the generated graph. @default 1'),
    l2: nonNegativeNumber.optional().describe('L2 penalty pulling e and A back toward their generated values, per event. @default 0.01'),
    optimizer: z.enum(['adagrad', 'sgd']).optional().describe('adagrad: AdaGrad-Norm per block; sgd: constant steps. @default adagrad'),
    initialAccumulator: positiveNumber.optional().describe("AdaGrad-Norm accumulator at an item's first event. @default 1"),
    fastMaxRows: nonNegativeInt.optional().describe('Waves of at most this many events run the plain-JS path instead of TensorFlow.js; 0 = always TensorFlow.js. @default 128'),
    ...metaBias,
  })
  .strict();

const coldnas = z
  .object({
    historyWindow: nonNegativeInt.optional().describe('Interactions the user mean covers (events); past it an exponential moving mean with rate 1/window; 0 = exact running mean of all. @default 5'),
    chunkRows: positiveInt.optional().describe('Rows per forward pass (bounds memory). @default 4096'),
    fastMaxRows: nonNegativeInt
      .optional()
      .describe('Scoring passes of at most this many rows run the plain-JS path; 0 = always TensorFlow.js for scoring (encodings are plain JS in the worker either way). @default 4'),
    ...metaBias,
  })
  .strict();

const fixedAdaptive = z
  .object({
    lrScale: nonNegativeNumber.optional().describe("Multiplier of the release's meta-learned per-parameter rates; 0 = no adaptation. @default 1"),
    chunkRows: positiveInt.optional().describe('Rows per forward/backward pass (bounds memory). @default 4096'),
    fastMaxRows: nonNegativeInt
      .optional()
      .describe('Waves of at most this many rows run the plain-JS path; 0 = always TensorFlow.js (the worker steps one event at a time: any value > 0 is plain JS throughout). @default 4096'),
    ...metaBias,
  })
  .strict();

export const adapterOptionsSchema = z
  .object({
    'fm-adagrad': fmAdagrad.optional(),
    emerg: emerg.optional(),
    coldnas: coldnas.optional(),
    'fixed-adaptive': fixedAdaptive.optional(),
  })
  .strict()
  .default({})
  .describe(
    "Options of the adapters, per adapter name (config file or env THAW_CONFIG; the flags below set the common ones). Only the section of the adapter run is read; none reads its release's adapter section. @default {} (every adapter's defaults)",
  );

/** `adapterOptions` of commands that run FM adapters only (`thaw replay`). */
export const fmAdapterOptionsSchema = z
  .object({ 'fm-adagrad': fmAdagrad.optional() })
  .strict()
  .default({})
  .describe('Options of the fm-adagrad adapter (config file section adapterOptions.fm-adagrad; --fm-learning-rate sets its learningRate). @default {}');

/**
 * Issue for a run config whose `adapterOptions` hold a section the adapter will not read (a typo
 * or a leftover would otherwise be ignored without a word): only the adapter's own section is
 * allowed, or, for `none`, a single section (that of its release's adapter).
 */
export function unreadAdapterSection(adapter: string, options: Record<string, unknown>): string | undefined {
  const sections = Object.keys(options);
  if (adapter === 'none') return sections.length <= 1 ? undefined : sections[1];
  return sections.find((s) => s !== adapter);
}

/** Flags of the options most often tuned (the step-size-like ones the peer bench's selection split chose, bench/peer-vw/README.md). */
export const ADAPTER_OPTION_FLAGS = [
  { flag: 'fm-learning-rate', key: 'adapterOptions.fm-adagrad.learningRate', kind: 'number', meta: 'LR' },
  { flag: 'emerg-learning-rate', key: 'adapterOptions.emerg.learningRate', kind: 'number', meta: 'LR' },
  { flag: 'coldnas-history-window', key: 'adapterOptions.coldnas.historyWindow', kind: 'int', meta: 'N' },
  { flag: 'fixed-adaptive-lr-scale', key: 'adapterOptions.fixed-adaptive.lrScale', kind: 'number', meta: 'X' },
] as const;
