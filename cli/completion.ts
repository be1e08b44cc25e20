// gridctl completion bash|zsh|fish: shell completion scripts made from the
// command tree itself, so a new command or flag completes without editing here.
import type { Command } from 'commander';

interface Node {
  path: string[];
  names: string[];
  flags: string[];
  children: Node[];
}

function treeOf(cmd: Command, path: string[] = []): Node {
  return {
    path,
    names: [cmd.name(), ...cmd.aliases()],
    flags: cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))),
    children: cmd.commands.map((c) => treeOf(c, [...path, c.name()])),
  };
}

function all(node: Node): Node[] {
  return [node, ...node.children.flatMap(all)];
}

export function completionScript(program: Command, shell: string): string {
  const root = treeOf(program);
  if (shell === 'bash' || shell === 'zsh') return (shell === 'zsh' ? 'autoload -U +X bashcompinit && bashcompinit\n' : '') + bash(root);
  if (shell === 'fish') return fish(root);
  throw new Error(`no completion for "${shell}": bash, zsh or fish`);
}

function bash(root: Node): string {
  // Each command path ("", "run", "token create") → what may follow it.
  const cases = all(root).map((n) => {
    const words = [...n.children.flatMap((c) => c.names), ...n.flags, ...(n === root ? [] : root.flags)].join(' ');
    return `    "${n.path.join(' ')}") words="${words}" ;;`;
  });
  return `# gridctl completion for bash: source <(gridctl completion bash)
_gridctl() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    case "\${path:+$path }$w" in
${all(root).filter((n) => n !== root).map((n) => `      "${n.path.join(' ')}") path="${n.path.join(' ')}" ;;`).join('\n')}
    esac
  done
  local words
  case "$path" in
${cases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _gridctl gridctl
`;
}

function fish(root: Node): string {
  const lines = ['# gridctl completion for fish: gridctl completion fish | source', 'complete -c gridctl -f'];
  for (const n of all(root)) {
    const when = n === root ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${n.path[n.path.length - 1]}`;
    for (const c of n.children) lines.push(`complete -c gridctl -n '${when}' -a '${c.names[0]}'`);
    for (const f of n.flags) lines.push(f.startsWith('--') ? `complete -c gridctl -n '${when}' -l ${f.slice(2)}` : `complete -c gridctl -n '${when}' -s ${f.slice(1)}`);
  }
  return lines.join('\n') + '\n';
}
