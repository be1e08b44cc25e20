// Docker image reference grammar (github.com/distribution/reference), so that a
// typo is refused at submit time with a message instead of failing on a node.
const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|-+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domain = `(?:${domainName}|${ipv6})(?::[0-9]+)?`;
const tag = '[\\w][\\w.-]{0,127}';
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const name = `(?:${domain}/)?${pathComponent}(?:/${pathComponent})*`;
const REFERENCE = new RegExp(`^(${name})(?::(${tag}))?(?:@(${digest}))?$`);

const MAX_NAME_LENGTH = 255;

/** Returns why `ref` is not a valid image reference, or undefined when it is. */
export function imageReferenceProblem(ref: string): string | undefined {
  if (ref.length === 0) return 'it is empty';
  const m = REFERENCE.exec(ref);
  if (!m) {
    if (/[A-Z]/.test(ref.split(/[:@]/)[0]!.split('/').pop()!)) {
      return 'repository names must be lowercase';
    }
    return 'expected [registry/]name[:tag][@digest], e.g. python:3.12-slim';
  }
  if (m[1]!.length > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} characters`;
  return undefined;
}
