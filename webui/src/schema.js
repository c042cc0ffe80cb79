// Validates parsed JSON against the schemas of provenance/schemas (bundled at build time, not copied): the
// evidence bundle and the trust file, the very files the Python side (provenance/_internal/schema.py)
// compiles. A small interpreter for the keywords those schemas use. A keyword it does not know is caught
// when the page is built (webui/build.mjs runs keywordErrors over every shipped schema and stops), never at
// a user's load; at run time it still throws rather than be ignored. Like the Python side it adds the one
// rule draft-07 does not have: an integer must be written as an integer literal (1, not 1.0 or 1e0).
import bundleSchema from '../../provenance/schemas/evidence-bundle.schema.json';
import trustSchema from '../../provenance/schemas/trust.schema.json';
import { isFloatLiteral } from './jcs.js';

const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', '$defs']);
const KEYWORDS = new Set([
  'type', 'const', 'pattern', 'minimum', 'maximum', 'maxItems', 'items', 'required', 'properties',
  'additionalProperties', 'oneOf', '$ref',
]);
const own = (obj, key) => Object.hasOwn(obj, key);

/**
 * Why this reader cannot apply `schema` faithfully, as messages naming the path: keywords it does not
 * interpret, patterns it cannot compile (ECMA-262 with the u flag), references it cannot follow. Empty
 * when it can. webui/build.mjs refuses to build the page otherwise.
 */
export function keywordErrors(schema) {
  const errors = [];
  const visit = (node, path) => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) {
      errors.push(`${path}: a schema must be an object`);
      return;
    }
    for (const k of Object.keys(node)) {
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) errors.push(`${path}: keyword ${k} is not supported`);
    }
    if (own(node, 'pattern')) {
      try {
        new RegExp(node.pattern, 'u');
      } catch (e) {
        errors.push(`${path}: pattern does not compile: ${e.message}`);
      }
    }
    if (own(node, '$ref')) {
      const target = String(node.$ref).startsWith('#/') ? node.$ref.slice(2).split('/').reduce((n, part) => n?.[part], schema) : undefined;
      if (target === undefined) errors.push(`${path}: unsupported $ref ${node.$ref}`);
    }
    for (const [k, sub] of Object.entries(node.properties ?? {})) visit(sub, `${path}/properties/${k}`);
    for (const [k, sub] of Object.entries(node.$defs ?? {})) visit(sub, `${path}/$defs/${k}`);
    (node.oneOf ?? []).forEach((sub, i) => visit(sub, `${path}/oneOf/${i}`));
    if (own(node, 'items')) visit(node.items, `${path}/items`);
  };
  visit(schema, '#');
  return errors;
}

function typeOf(v, holder, key) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) && !isFloatLiteral(holder, key) ? 'integer' : 'number';
  return typeof v; // string, boolean, object
}

function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Errors of `value` (that is `holder[key]`) against `node` of `root`, as [{path, message}]. */
function check(root, value, node, path, errors, holder, key) {
  for (const k of Object.keys(node)) {
    if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`schema keyword ${k} is not supported`);
  }
  const fail = (message) => errors.push({ path: path.join('/') || '(top level)', message });
  if (own(node, '$ref')) {
    if (!node.$ref.startsWith('#/')) throw new Error(`unsupported $ref ${node.$ref}`);
    const target = node.$ref.slice(2).split('/').reduce((n, part) => n[part], root);
    check(root, value, target, path, errors, holder, key);
  }
  if (own(node, 'type')) {
    const t = typeOf(value, holder, key);
    if (!(t === node.type || (node.type === 'number' && t === 'integer'))) {
      fail(`${JSON.stringify(value)?.slice(0, 60)} is not of type '${node.type}'`);
      return errors;
    }
  }
  if (own(node, 'const') && !equal(value, node.const)) fail(`${JSON.stringify(node.const)} was expected`);
  if (own(node, 'pattern') && typeof value === 'string' && !new RegExp(node.pattern, 'u').test(value)) {
    fail(`'${value.slice(0, 80)}' does not match '${node.pattern}'`);
  }
  if (own(node, 'minimum') && typeof value === 'number' && value < node.minimum) {
    fail(`${value} is less than the minimum of ${node.minimum}`);
  }
  if (own(node, 'maximum') && typeof value === 'number' && value > node.maximum) {
    fail(`${value} is greater than the maximum of ${node.maximum}`);
  }
  if (own(node, 'maxItems') && Array.isArray(value) && value.length > node.maxItems) fail('is too long');
  if (own(node, 'items') && Array.isArray(value)) {
    value.forEach((v, i) => check(root, v, node.items, [...path, i], errors, value, i));
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    // Own properties only: "constructor" or "__proto__" in a bundle are unknown fields, not built-ins.
    for (const req of node.required ?? []) if (!own(value, req)) fail(`'${req}' is a required property`);
    const props = node.properties ?? {};
    for (const k of Object.keys(props)) if (own(value, k)) check(root, value[k], props[k], [...path, k], errors, value, k);
    const extra = Object.keys(value).filter((k) => !own(props, k));
    if (node.additionalProperties === false) {
      if (extra.length) fail(`additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} unexpected)`);
    } else if (typeof node.additionalProperties === 'object') {
      // A map's values (the trust file's `kinds`): each checked against the one schema.
      for (const k of extra) check(root, value[k], node.additionalProperties, [...path, k], errors, value, k);
    }
  }
  if (own(node, 'oneOf')) {
    const matches = node.oneOf.filter((sub) => check(root, value, sub, path, [], holder, key).length === 0).length;
    if (matches !== 1) fail(matches ? 'is valid under more than one of the given schemas' : 'is not valid under any of the given schemas');
  }
  return errors;
}

function firstError(schema, value) {
  const errors = check(schema, value, schema, [], [], null, null);
  if (!errors.length) return null;
  errors.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return errors[0];
}

/** The first schema error of a parsed bundle (sorted by path), or null. */
export const schemaError = (bundle) => firstError(bundleSchema, bundle);

/** The first schema error of a parsed trust file (sorted by path), or null. */
export const trustSchemaError = (trust) => firstError(trustSchema, trust);

export const MEDIA_TYPE = bundleSchema.properties.media_type.const;
