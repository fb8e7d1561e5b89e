/**
 * The shape of a digit everywhere in the service, from a PNG's preprocessing to a model's input
 * and output: MNIST's 28×28 grey levels, one channel, ten classes.
 */
export const DIGIT_SIZE = 28;
export const DIGIT_PIXELS = DIGIT_SIZE * DIGIT_SIZE;
/** A model's input per image: [height, width, channels]. */
export const DIGIT_SHAPE: [number, number, number] = [DIGIT_SIZE, DIGIT_SIZE, 1];
export const NUM_CLASSES = 10;
