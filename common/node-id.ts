// What a node id may be: the agent's --node-id, an agent certificate's common
// name, and what the control plane accepts in a hello all follow this one rule.
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const NODE_ID_RULE = '1-128 letters, digits, ".", "_" or "-", starting with a letter or digit';
