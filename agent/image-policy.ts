// Which images this node agrees to run: any, or only references starting with
// one of the configured prefixes (e.g. "registry.internal/"). Pure.
export function imageRefusal(image: string, allowedPrefixes: string[]): string | undefined {
  if (allowedPrefixes.length === 0 || allowedPrefixes.some((p) => image.startsWith(p))) return undefined;
  return `image ${image} is not allowed on this node (allowed: ${allowedPrefixes.join(', ')})`;
}
