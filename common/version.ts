// The version agents and control planes announce to each other.
export const GRID_VERSION = '0.1.0';
