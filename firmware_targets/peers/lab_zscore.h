/* The lab's Arduino streaming Z-score (../shared/reference/lab14-anomaly-detection-on-edge.txt,
 * "Quick Reference"), as plain C for the bench's peer row: the same window of 50, threshold
 * 2.5, minimum count 10, and the never-poison rule (a flagged value is not learnt).  Arduino's
 * max() and abs() are macros that work on floats; LAB_MAX and LAB_ABS are the same macros.
 * On AVR double is float, so sqrt() and the double constant 0.0001 are float32, as in the
 * sketch.  Included by the firmware app's dispatch only (built as C); one channel. */
#ifndef LAB_ZSCORE_H
#define LAB_ZSCORE_H

#include <math.h>
#include <stdbool.h>

#define LAB_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LAB_ABS(x) ((x) > 0 ? (x) : -(x))

static const int WINDOW_SIZE = 50;
static const float THRESHOLD = 2.5f;

static float buffer[50];
static int bufferIndex = 0;
static int bufferCount = 0;
static float runningSum = 0;
static float runningSumSq = 0;

static bool detectAnomaly(float value)
{
    float mean = runningSum / LAB_MAX(bufferCount, 1);
    float variance = (runningSumSq / bufferCount) - (mean * mean);
    float std = sqrt(LAB_MAX(variance, 0.0001));

    float z = LAB_ABS(value - mean) / std;
    bool isAnomaly = (bufferCount >= 10) && (z > THRESHOLD);

    if (!isAnomaly) {
        if (bufferCount == WINDOW_SIZE) {
            runningSum -= buffer[bufferIndex];
            runningSumSq -= buffer[bufferIndex] * buffer[bufferIndex];
        } else {
            bufferCount++;
        }
        runningSum += value;
        runningSumSq += value * value;
        buffer[bufferIndex] = value;
        bufferIndex = (bufferIndex + 1) % WINDOW_SIZE;
    }
    return isAnomaly;
}

#endif
