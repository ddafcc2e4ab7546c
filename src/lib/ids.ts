/** ULIDs name meters and subjects; a path segment that matches is looked up as an id first. */
const ULID = /^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$/;

export const isUlid = (text: string) => ULID.test(text);
