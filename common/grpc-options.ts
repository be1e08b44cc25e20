// Channel options shared by every Grid server and client. Keepalive is what finds
// a silent peer (half-open TCP); without it a dead connection is never noticed.
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

// The server's keepalive is slower than the heartbeat timeout (3 s) on purpose:
// a frozen agent must be judged by its silence (LOST at once), not look like a
// closed stream (which earns a reconnect grace). Keepalive only reaps the
// transport afterwards. Agents ping every 2 s and give a ping 3 s, the
// heartbeat timeout: a half-open connection is found in about 5 s, and a
// control plane stalled for a second (a GC of a large heap: the scale
// benchmark saw 1-5 s stalls at 20,000 agents) no longer has every agent drop
// its connection and reconnect at once, which stalled it again (1 s here made
// 89,700 connects of 20,000 agents in a few minutes).
export const SERVER_OPTIONS = {
  'grpc.keepalive_time_ms': 6_000,
  'grpc.keepalive_timeout_ms': 2_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 1_000,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};

export const CLIENT_OPTIONS = {
  'grpc.keepalive_time_ms': 2_000,
  'grpc.keepalive_timeout_ms': 3_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};
