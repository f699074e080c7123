export function zipEntries(file: string): string[];
