import { v7 } from 'uuid';

/** Time-ordered UUID (v7): ids we mint sort by creation time, which keeps btree inserts local. */
export const newId = (): string => v7();
