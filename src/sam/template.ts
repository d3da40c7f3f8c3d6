/**
 * Reads an AWS SAM (CloudFormation) template from YAML or JSON.
 *
 * Why `yaml` (eemeli/yaml): it is the maintained, spec-complete YAML 1.2 parser for
 * JavaScript, with a documented custom-tag API, so CloudFormation's short forms
 * (`!Ref X`, `!Sub "..."`, `!GetAtt A.B`, `!If [...]`...) become the long forms
 * (`{Ref: X}`, `{"Fn::Sub": "..."}`, `{"Fn::GetAtt": ["A", "B"]}`) while parsing, and
 * errors come with line and column. JSON templates are YAML too.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument, type Tags, type YAMLMap, type YAMLSeq } from 'yaml';

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

/** CloudFormation's intrinsic functions that have a `!Short` form. */
const intrinsics = ['Base64', 'Cidr', 'FindInMap', 'GetAtt', 'GetAZs', 'ImportValue', 'Join', 'Select', 'Split', 'Sub', 'Transform', 'If', 'Equals', 'Not', 'And', 'Or', 'Condition', 'Ref'];

function longName(name: string): string {
  return name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
}

function cloudFormationTags(): Tags {
  const tags: Tags = [];
  for (const name of intrinsics) {
    const key = longName(name);
    tags.push({
      tag: `!${name}`,
      // `!GetAtt Resource.Attribute` is the one short form whose scalar is split.
      resolve: (value: string) => ({ [key]: name === 'GetAtt' ? splitGetAtt(value) : value }),
    });
    tags.push({ tag: `!${name}`, collection: 'seq', resolve: (seq: YAMLMap.Parsed | YAMLSeq.Parsed) => ({ [key]: seq.toJSON() }) });
    tags.push({ tag: `!${name}`, collection: 'map', resolve: (map: YAMLMap.Parsed | YAMLSeq.Parsed) => ({ [key]: map.toJSON() }) });
  }
  return tags;
}

function splitGetAtt(value: string): string[] {
  const dot = value.indexOf('.');
  return dot < 0 ? [value] : [value.slice(0, dot), value.slice(dot + 1)];
}

export type Template = Record<string, unknown> & { Resources: Record<string, Record<string, unknown>> };

export function parseTemplate(text: string, file: string): Template {
  const doc = parseDocument(text, { customTags: cloudFormationTags(), uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new TemplateError(`${file}: ${doc.errors.map((e) => e.message).join('\n')}`);
  const value: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TemplateError(`${file}: a template is a mapping with a Resources section.`);
  const template = value as Record<string, unknown>;
  const resources = template.Resources;
  if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) throw new TemplateError(`${file}: the template has no Resources section.`);
  for (const [id, resource] of Object.entries(resources)) {
    if (typeof resource !== 'object' || resource === null || typeof (resource as Record<string, unknown>).Type !== 'string') {
      throw new TemplateError(`${file}: Resources.${id} has no Type.`);
    }
  }
  return template as Template;
}

export async function readTemplate(file: string): Promise<Template> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TemplateError(`Cannot read template ${file}: ${(err as Error).message}`);
  }
  return parseTemplate(text, file);
}
