// The certificate library's dependency-injection container needs the Reflect polyfill loaded first;
// module evaluation follows this file's order, which import sorting elsewhere would not keep.
import 'reflect-metadata';

export * from '@peculiar/x509';
