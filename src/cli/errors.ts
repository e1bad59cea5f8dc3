/** A mistake in the command line or its inputs: reported in one line, exit status 2. */
export class UsageError extends Error {}
