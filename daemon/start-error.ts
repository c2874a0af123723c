/** A failure to start, with a message for the person who ran `agentd daemon`. */
export class StartError extends Error {}
